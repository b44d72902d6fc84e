"""Generate an event config with thousands of sites, for the benchmark and for tests at national scale."""

from __future__ import annotations

from pathlib import Path

CATEGORIES = (("workers", "Công nhân, người lao động"), ("public-employees", "Cán bộ, công chức, viên chức"),
              ("guests", "Khách mời"))
TOPICS = (("policy", "Chính sách, pháp luật"), ("livelihood", "Việc làm, thu nhập, đời sống"),
          ("other", "Vấn đề khác"))
AGENCIES = (("sldtbxh", "Sở Lao động - Thương binh và Xã hội"), ("bhxh", "Bảo hiểm xã hội tỉnh"))
CHECKLIST = (("camera", "Camera, hình ảnh"), ("audio", "Âm thanh, micro, loa"), ("video_link", "Kết nối hình ảnh"))
COMMUNES_PER_GROUP = 30


def site_id(index: int) -> str:
    """The id of the index-th generated site; 0 is the central hall."""
    return "tinh" if index == 0 else f"xa-{index:05d}"


def config_text(sites: int, event_id: str = "bench", limits: dict[str, float] | None = None,
                groups: int | None = None) -> str:
    """TOML for an event with `sites` connection points: one central hall, the rest communes in groups
    (`groups` of them, as even as can be, e.g. 3,320 communes in 34 provinces; else 30 communes each)."""
    if sites < 1:
        raise ValueError("sites must be at least 1")
    if groups is not None and groups < 1:
        raise ValueError("groups must be at least 1")
    per_group = -(-(sites - 1) // groups) if groups else COMMUNES_PER_GROUP
    out = [
        "[event]", f'id = "{event_id}"', f'title = "Hội nghị trực tuyến toàn quốc ({sites:,} điểm cầu)"',
        "date = 2025-06-20", 'start = "08:00"', "duration_minutes = 240", 'timezone = "Asia/Ho_Chi_Minh"', "",
    ]
    if limits:
        out += ["[limits]", *(f"{key} = {value}" for key, value in limits.items()), ""]
    out += ["[[sites]]", 'id = "tinh"', 'name = "Điểm cầu Trung ương"', 'kind = "central"', "expected = 300", ""]
    for index in range(1, sites):
        group = (index - 1) // max(1, per_group) + 1
        out += ["[[sites]]", f'id = "{site_id(index)}"', f'name = "Xã số {index}"', 'kind = "commune"',
                "expected = 60", f'group = "Cụm {group}"', ""]
    for section, rows in (("categories", CATEGORIES), ("topics", TOPICS), ("agencies", AGENCIES),
                          ("checklist", CHECKLIST)):
        for key, name in rows:
            out += [f"[[{section}]]", f'id = "{key}"', f'name = "{name}"', ""]
    return "\n".join(out)


def write_config(path: str | Path, sites: int = 3000, event_id: str = "bench",
                 limits: dict[str, float] | None = None, groups: int | None = None) -> Path:
    """Write a generated config to `path` and return it; `limits` sets keys of the [limits] section."""
    path = Path(path)
    path.write_text(config_text(sites, event_id, limits, groups), encoding="utf-8")
    return path

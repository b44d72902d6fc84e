"""Printable access sheets: one A4 page per site with the QR codes of its technician and registrar links."""

from __future__ import annotations

from pathlib import Path

import segno
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from hub.config import Config
from hub.tokens import IssuedToken

ROLE_NAMES = {
    "admin": "Quản trị hệ thống", "moderator": "Tổ thư ký, điều hành câu hỏi", "chair": "Chủ trì Hội nghị",
    "viewer": "Màn hình trình chiếu", "technician": "Kỹ thuật viên điểm cầu", "registrar": "Cán bộ điểm danh, tiếp nhận câu hỏi",
    "agency": "Cơ quan trả lời",
}

templates = Environment(loader=PackageLoader("hub", "templates"), autoescape=select_autoescape(["html"]))


def qr_svg(text: str) -> Markup:
    """An inline SVG QR code: no image files, no network."""
    return Markup(segno.make(text, error="m").svg_inline(scale=4, omitsize=False))


def write_access_sheet(config: Config, issued: list[IssuedToken], base_url: str, out: Path) -> None:
    """The sheet the organisers print and hand out: names people know (sites, agencies), never config ids."""
    agency_names = {a.id: a.name for a in config.agencies}
    by_site: dict[str, list[dict[str, object]]] = {}
    general = []
    for token in issued:
        agency = token.identity.agency
        entry = {"role": ROLE_NAMES[token.identity.role], "link": token.link(base_url), "qr": qr_svg(token.link(base_url)),
                 "agency": agency and agency_names.get(agency, agency)}
        if token.identity.site:
            by_site.setdefault(token.identity.site, []).append(entry)
        else:
            general.append(entry)
    sites = [{"site": s, "links": by_site[s.id]} for s in config.sites if s.id in by_site]
    html = templates.get_template("access.html").render(event=config.event, sites=sites, general=general)
    out.write_text(html, encoding="utf-8")
    out.chmod(0o600)

"""The hall's projector screen in real headless Chromium: the question on air, the site speaking, the totals."""

from __future__ import annotations

from playwright.async_api import expect

from .browser import Pages
from .conftest import RunningHub

LIVE = 5000


async def test_projector_follows_the_floor_and_totals(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/projector", hub.token("viewer"), viewport={"width": 1920, "height": 1080})
    await expect(page.locator("#question")).to_have_text("Chưa có câu hỏi nào đang được trả lời", timeout=LIVE)
    await expect(page.locator("#expected")).to_have_text("2.300")
    assert await page.locator("button, input, select, a").count() == 0  # a screen, not a console

    admin = await hub.client("admin")
    for site in hub.config.sites:
        await admin.call("attendance.set", site=site.id, category="workers", count=site.expected)
    mod = await hub.client("moderator")
    text = "Đề nghị tỉnh hỗ trợ nhà ở xã hội cho công nhân khu công nghiệp Hòa Bình."
    answer = await mod.call("question.submit", site="tp-kon-tum", topic="livelihood", text=text, agency="sxd",
                            delegate={"name": "Nguyễn Thị Hồng", "unit": "Công ty Cà phê 731"})
    await mod.call("question.update", question=answer["question"], status="queued")
    await mod.call("floor.call", site="tp-kon-tum", question=answer["question"])

    await expect(page.locator("#question")).to_have_text(text, timeout=LIVE)
    await expect(page.locator("#site")).to_have_text("Thành phố Kon Tum")
    await expect(page.locator("#delegate")).to_have_text("Nguyễn Thị Hồng — Công ty Cà phê 731")
    await expect(page.locator("#agency")).to_contain_text("Sở Xây dựng")
    await expect(page.locator("#present")).to_have_text("2.300")

    await mod.call("question.update", question=answer["question"], status="answered")
    await expect(page.locator("#answered")).to_have_text("1", timeout=LIVE)
    await expect(page.locator("#question")).to_have_text("Chưa có câu hỏi nào đang được trả lời")


async def test_projector_in_english(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/projector?lang=en", hub.token("viewer"))
    await expect(page.locator("#question")).to_have_text("No question on air", timeout=LIVE)
    await expect(page.locator("#expected")).to_have_text("2,300")

"""The registrar's page in real headless Chromium: counting, a question, and the offline outbox."""

from __future__ import annotations

from playwright.async_api import Page, expect

from .browser import HubLink, Pages
from .conftest import RunningHub

PHONE = {"width": 390, "height": 844}


async def online(page: Page) -> None:
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "online")


async def fill_question(page: Page, name: str, text: str) -> None:
    await page.fill("input[name=delegate]", name)
    await page.fill("input[name=unit]", "Công ty Cao su Kon Tum")
    await page.select_option("select[name=topic]", "livelihood")
    await page.select_option("select[name=agency]", "sxd")
    await page.fill("textarea[name=text]", text)
    await page.check("input[name=speak]")
    await page.click("#question-form button[type=submit]")


async def test_counting_and_a_question_on_a_phone(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="dak-ha"), viewport=PHONE)
    await online(page)
    await expect(page.locator("#site-name")).to_have_text("Huyện Đắk Hà")
    workers = page.locator(".category[data-category=workers]")
    for delta in ("10", "10", "1", "-1", "1"):
        await workers.locator(f"button[data-delta='{delta}']").click()
    await expect(workers.locator(".count")).to_have_text("21")
    guests = page.locator(".category[data-category=guests]")
    await guests.locator("input").fill("7")
    await guests.locator("button[type=submit]").click()
    await expect(page.locator("#present")).to_have_text("28")
    await expect(page.locator("#expected")).to_have_text("250")
    await expect(page.locator("#outbox")).to_be_hidden()
    assert hub.hub.state.sites["dak-ha"].attendance == {"workers": 21, "guests": 7}

    await fill_question(page, "Nguyễn Thị Lan", "Đề nghị hỗ trợ nhà ở cho công nhân.")
    item = page.locator("#questions li[data-question]")
    await expect(item).to_have_count(1)
    await expect(item.locator(".q-status")).to_have_text("Mới gửi")
    await expect(page.locator("#form-status")).to_have_text("Đã gửi câu hỏi của Nguyễn Thị Lan.")
    [q] = hub.hub.state.questions.values()
    assert (q.site, q.topic, q.agency, q.wants_to_speak, q.delegate["name"]) == (
        "dak-ha", "livelihood", "sxd", True, "Nguyễn Thị Lan")
    moderator = await hub.client("moderator")
    await moderator.call("question.update", question=q.id, status="queued")
    await expect(item.locator(".q-status")).to_have_text("Chờ trả lời")
    await page.click("#lang button[data-lang=en]")
    await expect(item.locator(".q-status")).to_have_text("Queued")
    await expect(page.locator("#att-title")).to_have_text("Attendance")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways on a phone"


async def test_offline_outbox_survives_reload_and_sends_once(hub: RunningHub, pages: Pages) -> None:
    """Offline: submit; reload while the hub is still unreachable; back online: exactly one question."""
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="sa-thay"))
    await online(page)
    link = HubLink(page)
    await link.cut()
    await page.context.set_offline(True)
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "offline", timeout=10000)
    await fill_question(page, "Y Nhung", "Đề nghị mở lớp đào tạo nghề tại huyện.")
    await page.locator(".category[data-category=workers] button[data-delta='10']").click()
    await expect(page.locator("#outbox")).to_have_text("2 thay đổi chờ gửi")
    await expect(page.locator("#questions li[data-status=pending]")).to_have_count(1)
    await expect(page.locator("#form-status")).to_have_text("Đã lưu câu hỏi của Y Nhung; sẽ tự gửi khi có mạng.")

    await page.context.set_offline(False)  # the page can load again, but the hub's websocket stays cut
    await page.reload()
    await expect(page.locator("#outbox")).to_have_text("2 thay đổi chờ gửi")
    await expect(page.locator("#questions li[data-status=pending]")).to_have_count(1)
    await expect(page.locator(".category[data-category=workers] .count")).to_have_text("10")
    assert hub.hub.state.questions == {}

    await link.restore()
    await online(page)
    await expect(page.locator("#outbox")).to_be_hidden()
    await expect(page.locator("#questions li[data-question]")).to_have_count(1)
    await page.reload()
    await online(page)
    await expect(page.locator("#questions li[data-question] .q-status")).to_have_text("Mới gửi")
    questions = list(hub.hub.state.questions.values())
    assert [(q.site, q.delegate["name"]) for q in questions] == [("sa-thay", "Y Nhung")]
    assert hub.hub.state.sites["sa-thay"].attendance == {"workers": 10}
    assert [e.type for e in hub.hub.log.read(0)] == ["question.submit", "attendance.add"]

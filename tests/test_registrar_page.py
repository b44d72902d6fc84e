"""The registrar's page in real headless Chromium: counting, a question, the offline outbox, "send now",
a small phone, and a closed meeting."""

from __future__ import annotations

import asyncio

from playwright.async_api import Page, expect

from .browser import HubLink, Pages
from .conftest import RunningHub

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}


async def online(page: Page) -> None:
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "online")


async def fill_question(page: Page, name: str, text: str) -> None:
    await page.fill("input[name=delegate]", name)
    await page.fill("input[name=unit]", "Công ty Cao su Kon Tum")
    await page.check("#topics input[value=livelihood]")
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


async def test_send_now_reconnects_at_once_when_the_network_is_back(hub: RunningHub, pages: Pages) -> None:
    """Back online, the page's socket may hang on a connection made while the network was gone:
    "Gửi lại ngay" drops it and sends the outbox without waiting for anything."""
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="kon-plong"), viewport=PHONE)
    await online(page)
    link = HubLink(page)
    await link.cut(hang=True)
    await page.context.set_offline(True)
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "offline", timeout=10000)
    send_now = page.locator("#send-now")
    await expect(send_now).to_be_hidden()  # nothing waits to be sent
    await fill_question(page, "A Thiên", "Đề nghị mở rộng trạm y tế xã Măng Cành.")
    await expect(send_now).to_have_text("Gửi lại ngay")
    await page.click("#lang button[data-lang=en]")
    await expect(send_now).to_have_text("Send now")
    await page.click("#lang button[data-lang=vi]")

    link.tried.clear()
    await page.context.set_offline(False)
    await asyncio.wait_for(link.tried.wait(), 10)  # the page tried again at once; that attempt hangs
    await link.restore(announce=False)
    await expect(send_now).to_be_visible()
    await send_now.click()
    await online(page)
    await expect(page.locator("#outbox")).to_be_hidden()
    await expect(send_now).to_be_hidden()
    await expect(page.locator("#questions li[data-question]")).to_have_count(1)
    assert [q.delegate["name"] for q in hub.hub.state.questions.values()] == ["A Thiên"]


async def test_topics_fit_and_read_in_full_on_a_small_phone(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="dak-ha"), viewport=SMALL_PHONE)
    await online(page)
    choices = page.locator("#topics label")
    await expect(choices).to_have_text([topic.name for topic in hub.config.topics])
    for index in range(await choices.count()):
        box = await choices.nth(index).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= SMALL_PHONE["width"], (index, box)
        clipped = await choices.nth(index).evaluate("e => e.scrollWidth > e.clientWidth")
        assert not clipped, f"topic {index} is cut off"
    await choices.nth(2).click()
    await expect(page.locator("#topics input[value=policy]")).to_be_checked()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SMALL_PHONE["width"], "the page scrolls sideways on a small phone"


async def test_a_closed_meeting_takes_no_more_questions_from_the_floor(hub: RunningHub, pages: Pages) -> None:
    """A question typed offline while the meeting was on, sent after it closed: the hub refuses it and the
    page says why; the form is closed."""
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="ia-hdrai"))
    await online(page)
    await expect(page.locator("#closed")).to_be_hidden()
    link = HubLink(page)
    await link.cut()
    await page.context.set_offline(True)
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "offline", timeout=10000)
    await fill_question(page, "Rơ Châm Ngơn", "Đề nghị hỗ trợ giống cây cao su cho hộ nghèo.")
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="closed")

    await page.context.set_offline(False)
    await link.restore()
    await online(page)
    await expect(page.locator("#problem")).to_have_text(
        "Không gửi được câu hỏi của Rơ Châm Ngơn: hội nghị đã kết thúc, không nhận thêm câu hỏi từ hội trường.")
    await expect(page.locator("#outbox")).to_be_hidden()
    await expect(page.locator("#form-status")).to_have_text("")
    assert hub.hub.state.questions == {}
    notice = page.locator("#closed")
    await expect(notice).to_have_text("Hội nghị đã kết thúc: không nhận thêm câu hỏi từ hội trường.")
    await expect(page.locator("#question-form button[type=submit]")).to_be_disabled()
    await expect(page.locator("#question-form textarea")).to_be_disabled()
    await page.click("#lang button[data-lang=en]")
    await expect(notice).to_have_text("The meeting has closed: no more questions are taken from the floor.")
    await expect(page.locator("#problem")).to_have_text(
        "Rơ Châm Ngơn's question was not sent: the meeting has closed and takes no more questions from the floor.")

    await moderator.call("event.phase", phase="live")  # reopened: the form takes questions again
    await expect(notice).to_be_hidden()
    await expect(page.locator("#question-form button[type=submit]")).to_be_enabled()


async def test_a_burst_of_taps_is_sent_whole(hub: RunningHub, pages: Pages) -> None:
    """Taps queued while the outbox is sending go out in the same pass, not at the next tap or reconnect."""
    page = await pages.open(hub, "/registrar", hub.token("registrar", site="dak-ha"), viewport=PHONE)
    await online(page)
    await page.evaluate("""() => {
        const plus = document.querySelector(".category[data-category=workers] button[data-delta='1']");
        for (let i = 0; i < 15; i++) plus.click();
    }""")
    await expect(page.locator("#outbox")).to_be_hidden()
    assert hub.hub.state.sites["dak-ha"].attendance == {"workers": 15}

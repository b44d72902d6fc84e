"""The moderator's console in real headless Chromium: import, search, every queue action, agencies, phase, agenda."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playwright.async_api import Page, expect

from hub.core import views
from hub.questions.search import fold

from .browser import ARTIFACTS, Pages
from .conftest import ROOT, RunningHub

LIVE = 5000
QUESTIONS_CSV = ROOT / "config" / "kon-tum-2023-questions.csv"


async def open_console(pages: Pages, hub: RunningHub) -> Page:
    page = await pages.open(hub, "/moderator", hub.token("moderator"))
    await expect(page.locator(".topic")).to_have_count(len(hub.config.topics), timeout=LIVE)
    return page


def card(page: Page, qid: str):
    return page.locator(f'article.q[data-question="{qid}"]')


async def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until the hub's state shows what the page sent (the page answers before the test can look)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the hub never got the page's command"
        await asyncio.sleep(0.05)


async def submit(hub: RunningHub, site: str, name: str, text: str, topic: str = "training") -> str:
    mod = await hub.client("moderator")
    answer = await mod.call("question.submit", site=site, topic=topic, text=text, delegate={"name": name, "unit": "Công ty"})
    return answer["question"]


def status(hub: RunningHub, qid: str) -> str:
    return hub.hub.state.questions[qid].status


async def test_import_file_and_search_without_diacritics(hub: RunningHub, pages: Pages) -> None:
    page = await open_console(pages, hub)
    await page.set_input_files("#import-file", str(QUESTIONS_CSV))
    await page.click("#import-form button[type=submit]")
    rows = len(QUESTIONS_CSV.read_text(encoding="utf-8").splitlines()) - 1
    await expect(page.locator("#import-result")).to_contain_text(f"Đã nhập {rows} câu hỏi mới", timeout=10000)
    await expect(page.locator("article.q")).to_have_count(rows, timeout=LIVE)
    assert len(hub.hub.state.questions) == rows

    await page.fill("#search", "xoa mu chu")
    wanted = {q.id for q in hub.hub.state.questions.values() if "xóa mù chữ" in q.text}
    assert wanted
    await expect(page.locator("article.q:visible")).to_have_count(len(wanted))
    shown = {await c.get_attribute("data-question") for c in await page.locator("article.q:visible").all()}
    assert shown == wanted

    await page.fill("#search", "dao tao")
    for visible in await page.locator("article.q:visible").all():
        assert "dao tao" in fold(await visible.inner_text())
    in_text = {q.id for q in hub.hub.state.questions.values() if "đào tạo" in q.text.lower()}
    shown = {await c.get_attribute("data-question") for c in await page.locator("article.q:visible").all()}
    assert in_text <= shown

    bad = ROOT / "test-artifacts" / "bad-questions.csv"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("topic,site,delegate,unit,text,agency,answer_note\nnope,tinh,A,B,Câu hỏi,,\n", encoding="utf-8")
    await page.set_input_files("#import-file", str(bad))
    await page.click("#import-form button[type=submit]")
    await expect(page.locator("#import-result .bad")).to_contain_text("Chưa nhập được", timeout=LIVE)
    await expect(page.locator("#import-result .errors li")).to_contain_text("dòng 2")
    assert len(hub.hub.state.questions) == rows
    # Chromium itself logs every HTTP error status; this 422 is the answer the test asked for, and the only one.
    errors = pages.watched[0].console_errors
    expected = [e for e in errors if "status of 422" in e]
    assert len(expected) == 1
    errors.remove(expected[0])


async def test_search_ignores_apostrophes_and_hyphens(hub: RunningHub, pages: Pages) -> None:
    road = await submit(hub, "dak-ha", "Ông A", "Đường đến nơi làm việc của công nhân ở Ia H'Drai xuống cấp.")
    labour = await submit(hub, "kon-ray", "Bà B", "Đề nghị Sở LĐ-TB&XH hỗ trợ đào tạo nghề.")
    page = await open_console(pages, hub)
    await expect(page.locator("article.q")).to_have_count(2, timeout=LIVE)
    for query, wanted in [("hdrai", road), ("ia hdrai", road), ("H’Drai", road), ("ldtb", labour)]:
        await page.fill("#search", query)
        await expect(page.locator("article.q:visible")).to_have_count(1)
        await expect(card(page, wanted)).to_be_visible()


async def test_queue_actions_from_the_console(hub: RunningHub, pages: Pages) -> None:
    page = await open_console(pages, hub)
    first = await submit(hub, "dak-to", "A Hùng", "Đề nghị mở lớp đào tạo nghề hàn cho công nhân.")
    second = await submit(hub, "sa-thay", "Y Lan", "Đề nghị hỗ trợ học phí học nghề cho lao động nữ.")
    third = await submit(hub, "kon-ray", "A Tuấn", "Đề nghị mở lớp đào tạo nghề hàn cho công nhân khu công nghiệp.")
    await expect(page.locator("article.q")).to_have_count(3, timeout=LIVE)

    for qid in (first, second):  # approve
        await card(page, qid).get_by_role("button", name="Duyệt").click()
        await expect(card(page, qid)).to_have_attribute("data-status", "queued", timeout=LIVE)
    assert status(hub, first) == status(hub, second) == "queued"

    await card(page, second).get_by_role("button", name="Lên trên").click()  # reorder
    topic_cards = page.locator('.topic[data-topic="training"] article.q')
    await expect(topic_cards.first).to_have_attribute("data-question", second, timeout=LIVE)
    state = hub.hub.state.questions
    assert state[second].position < state[first].position

    await card(page, second).get_by_role("button", name="Trả lời bằng văn bản").click()  # no agency yet
    await expect(page.locator("#toast")).to_contain_text("Chọn cơ quan trả lời")
    assert status(hub, second) == "queued"
    await card(page, second).locator("select.agency").select_option("sldtbxh")  # assign
    await expect(card(page, second).locator("select.agency")).to_have_value("sldtbxh")
    await eventually(lambda: state[second].agency == "sldtbxh")

    await card(page, first).get_by_role("button", name="Lên sóng").click()  # on air
    await expect(page.locator("#on-air")).to_contain_text("A Hùng", timeout=LIVE)
    assert hub.hub.state.floor and hub.hub.state.floor["question"] == first
    await page.locator("#on-air-actions").get_by_role("button", name="Đã trả lời").click()  # answered live
    await expect(card(page, first)).to_have_attribute("data-status", "answered", timeout=LIVE)
    await expect(page.locator('#speaking tr[data-site="dak-to"]')).to_contain_text("Huyện Đắk Tô")
    await expect(page.locator('#speaking tr[data-site="dak-to"] td').nth(1)).to_have_text("1")
    spoken = int(views.floor_view(hub.hub.state)["by_site"]["dak-to"]["seconds"] + 0.5)  # as the hub pushes it
    await expect(page.locator('#speaking tr[data-site="dak-to"] td').nth(2)).to_have_text(f"{spoken // 60}:{spoken % 60:02d}")

    await card(page, second).get_by_role("button", name="Trả lời bằng văn bản").click()  # defer
    await expect(card(page, second)).to_have_attribute("data-status", "deferred", timeout=LIVE)
    assert state[second].due is not None

    await card(page, third).get_by_role("button", name="Gộp trùng").click()  # merge a duplicate
    merge = card(page, third).locator(".subform select")
    await expect(merge).to_be_visible()
    await merge.select_option(first)
    await card(page, third).get_by_role("button", name="Gộp", exact=True).click()
    await expect(card(page, third)).to_have_attribute("data-status", "merged", timeout=LIVE)
    assert state[third].merged_into == first and state[first].co_askers[0]["site"] == "kon-ray"

    fourth = await submit(hub, "tinh", "Ông B", "Câu hỏi không thuộc phạm vi hội nghị.", topic="other")
    await card(page, fourth).get_by_role("button", name="Không tiếp nhận").click()  # reject with a reason
    await card(page, fourth).locator(".subform input").fill("Không thuộc phạm vi đối thoại")
    await card(page, fourth).get_by_role("button", name="Xác nhận không tiếp nhận").click()
    await expect(card(page, fourth)).to_have_attribute("data-status", "rejected", timeout=LIVE)
    assert state[fourth].reason == "Không thuộc phạm vi đối thoại"

    await page.select_option("#filter", "done")
    await expect(card(page, first)).to_be_visible()
    await expect(card(page, fourth)).to_be_visible()
    await expect(card(page, second)).to_be_hidden()


async def test_floor_call_agencies_phase_and_agenda(hub: RunningHub, pages: Pages) -> None:
    page = await open_console(pages, hub)
    qid = await submit(hub, "ngoc-hoi", "A Thuận", "Đề nghị hỗ trợ đào tạo kỹ năng số.")
    await card(page, qid).get_by_role("button", name="Duyệt").click()
    await expect(page.locator("#next")).to_contain_text("A Thuận", timeout=LIVE)
    await page.click("#take-next")  # floor.call with the suggested question
    await expect(page.locator("#on-air")).to_contain_text("Huyện Ngọc Hồi", timeout=LIVE)
    assert hub.hub.state.floor["site"] == "ngoc-hoi" and status(hub, qid) == "on_air"

    row = page.locator('.agency-row[data-agency="bhxh"]')
    await row.locator("select").select_option("deputy")
    await row.locator('input[name="delegate"]').fill("Phó Giám đốc Nguyễn Văn An")
    await row.locator('input[name="written_report"]').check()
    await row.get_by_role("button", name="Lưu").click()
    await expect(row).to_have_class("agency-row recorded", timeout=LIVE)
    assert hub.hub.state.agencies["bhxh"] == {**hub.hub.state.agencies["bhxh"], "status": "deputy",
                                               "delegate": "Phó Giám đốc Nguyễn Văn An", "written_report": True}

    await page.select_option("#phase", "live")
    await eventually(lambda: hub.hub.state.phase == "live")
    await page.select_option("#agenda", "bao-cao")
    await page.click("#agenda-go")
    await eventually(lambda: hub.hub.state.agenda_current == "bao-cao")
    await expect(page.locator("#agenda")).to_have_value("bao-cao", timeout=LIVE)


async def test_agency_progress_and_deadline_dates(hub: RunningHub, pages: Pages) -> None:
    mod = await hub.client("moderator")
    answer = await mod.call("question.submit", site="dak-ha", topic="livelihood", origin="pre", agency="sldtbxh",
                            text="Đề nghị xây nhà ở xã hội cho công nhân.", delegate={"name": "Y Điệp", "unit": "Công ty"})
    # The hub's clock is today's real time, long after the plan's 25 October: the missing draft is late.
    page = await pages.open(hub, "/moderator", hub.token("moderator"))
    panel = page.locator("#deadlines")
    late = panel.locator('.dlp-late li[data-agency="sldtbxh"]')
    await expect(late).to_contain_text("chưa có dự thảo trả lời 1 câu", timeout=LIVE)
    await expect(panel.locator('li[data-deadline="draft_answers"]')).to_have_class("passed late")
    await expect(panel.locator('li[data-deadline="draft_answers"]')).to_contain_text("25/10/2023")
    await expect(panel.locator('li[data-deadline="draft_answers"]')).to_contain_text("còn thiếu 1")
    await expect(panel.locator("li[data-deadline]")).to_have_count(5)
    await page.screenshot(path=str(ARTIFACTS / "moderator-agency-progress.png"), full_page=True)

    agency = await hub.client("agency", agency="sldtbxh")
    await agency.call("question.answer", question=answer["question"], kind="draft", text="Dự thảo trả lời.")
    await expect(panel.locator('tr[data-agency="sldtbxh"]')).not_to_have_class("late", timeout=15000)  # throttled refresh
    await expect(panel.locator(".dlp-late")).to_have_count(0)
    await expect(panel.locator('tr[data-agency="sldtbxh"] td').first).to_have_text("1/1")

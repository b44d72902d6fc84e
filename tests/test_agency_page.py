"""The agency page in headless Chromium: only the agency's own questions, a draft before the day, a written
answer for a deferred question after it, its deadlines, and the English switch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import RunningHub

OWN = ["Đề nghị xây nhà ở xã hội cho công nhân khu công nghiệp Hòa Bình.",
       "Đề nghị hỗ trợ học nghề cho lao động nữ trên 35 tuổi."]
OTHER = "Chậm chốt sổ BHXH khi người lao động nghỉ việc."


async def until(check: Any, timeout: float = 10) -> None:
    """Wait for the hub's state to show what the page did."""
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


async def test_agency_sees_only_its_questions_and_answers(hub: RunningHub, pages: Any) -> None:
    moderator = await hub.client("moderator")
    ids = []
    for text, topic, agency in ((OWN[0], "livelihood", "sldtbxh"), (OWN[1], "training", "sldtbxh"),
                                (OTHER, "procedures", "bhxh")):
        result = await moderator.call("question.submit", site="dak-ha", topic=topic, text=text, origin="pre",
                                      agency=agency, delegate={"name": "Y Điệp", "unit": "Công ty Cao su Kon Tum"})
        ids.append(result["question"])
    page = await pages.open(hub, "/agency", hub.token("agency", agency="sldtbxh"))
    await page.wait_for_selector(".card >> nth=1")
    assert await page.locator("#agency-name").inner_text() == "Sở Lao động - Thương binh và Xã hội"
    texts = await page.locator(".card .text").all_inner_texts()
    assert sorted(texts) == sorted(OWN) and OTHER not in await page.content()
    topics = await page.locator(".topic").evaluate_all("els => els.map(e => e.dataset.topic)")
    assert topics == ["training", "livelihood"]
    await page.wait_for_selector("#progress[data-assigned='2']")

    housing = page.locator(f".card[data-question='{ids[0]}']")
    await housing.locator("form.draft textarea").fill("Dự thảo: tỉnh đang triển khai 3 dự án nhà ở xã hội.")
    await housing.locator("form.draft button").click()
    await until(lambda: hub.hub.state.questions[ids[0]].draft is not None)
    assert hub.hub.state.questions[ids[0]].draft["text"] == "Dự thảo: tỉnh đang triển khai 3 dự án nhà ở xã hội."
    await page.wait_for_selector(f".card[data-question='{ids[0]}'] .answer")

    await moderator.call("question.update", question=ids[1], status="deferred")
    training = page.locator(f".card[data-question='{ids[1]}'][data-status='deferred']")
    await training.locator("form.written textarea").fill("Sở LĐ-TB&XH trả lời: năm 2024 mở 12 lớp nghề.")
    await training.locator("input[name=reference]").fill("2381/SLĐTBXH-VL")
    await training.locator("input[name=date]").fill("2023-12-04")
    await training.locator("form.written button").click()
    await until(lambda: hub.hub.state.questions[ids[1]].status == "answered_written")
    written = hub.hub.state.questions[ids[1]].written
    assert (written["reference"], written["date"]) == ("2381/SLĐTBXH-VL", "2023-12-04")
    await page.wait_for_selector(f".card[data-question='{ids[1]}'][data-status='answered_written']")

    await page.locator("#lang button[data-lang=en]").click()
    assert await page.locator("h1 [data-i18n=title]").inner_text() == "Answering agency"
    assert "Answered in writing" in await page.locator(f".card[data-question='{ids[1]}'] .badge").inner_text()

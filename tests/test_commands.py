"""What a command becomes: its event's data is exactly its fields, read without pydantic's serializer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hub.core.commands import COMMANDS, _data

# Each stored command with its optional fields left out and given (None, nested models, floats, bools).
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "site.checkin": [{"site": "a", "technician": "Anh Minh"},
                     {"site": "a", "technician": "Anh Minh", "phone": "0912 345 678"}],
    "site.check": [{"site": "a", "item": "camera", "ok": True}, {"site": "a", "item": "audio", "ok": False, "note": "rè"}],
    "site.incident": [{"site": "a", "kind": "audio", "open": True},
                      {"site": "a", "kind": "power", "open": False, "note": "", "incident": "i7"}],
    "attendance.set": [{"site": "a", "category": "workers", "count": 0}],
    "attendance.add": [{"site": "a", "category": "guests", "delta": -3}],
    "question.submit": [
        {"site": "a", "delegate": {"name": "Nguyễn Văn A"}, "topic": "t", "text": "Câu hỏi?"},
        {"site": "a", "delegate": {"name": "Trần Thị B", "unit": "Công ty"}, "topic": "t", "text": "Câu hỏi?",
         "agency": "so-lao-dong", "wants_to_speak": True, "origin": "pre", "answer_note": "Đã trả lời"}],
    "question.update": [{"question": "q1", "status": "queued"}, {"question": "q1", "position": 3},
                        {"question": "q1", "merged_into": "q2", "reason": "trùng"},
                        {"question": "q1", "agency": "x", "answer_note": "", "position": 1.5}],
    "floor.call": [{"site": "a"}, {"site": "a", "question": "q1"}],
    "agency.attendance": [{"agency": "x", "status": "head"},
                          {"agency": "x", "status": "deputy", "delegate": "Ông C", "written_report": True}],
    "event.phase": [{"phase": "live"}],
    "question.answer": [{"question": "q1", "kind": "draft", "text": "Dự thảo"},
                        {"question": "q1", "kind": "written", "text": "Trả lời", "reference": "12/UBND",
                         "date": "2026-01-02"}],
    "agenda.advance": [{"item": "opening"}],
}


def test_every_stored_command_has_examples() -> None:
    assert set(EXAMPLES) == {name for name, spec in COMMANDS.items() if spec.stores}


@pytest.mark.parametrize("name,fields", [(name, fields) for name, cases in EXAMPLES.items() for fields in cases])
def test_event_data_is_what_model_dump_gives(name: str, fields: dict[str, Any]) -> None:
    cmd = COMMANDS[name].model.model_validate(fields)
    for exclude in ((), ("incident",)):  # as stored: the same JSON, key order and number types included
        assert orjson.dumps(_data(cmd, *exclude)) == orjson.dumps(cmd.model_dump(exclude={"site", *exclude},
                                                                                  exclude_none=True))

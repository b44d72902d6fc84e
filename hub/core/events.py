"""The event vocabulary: every type the log holds, each registered once with all the hub knows of it.

A type is registered where it is folded (`@event` on its fold in `hub.core.state`), with whether
folding it can move a site's status and the line the operator's log gives it (`hub.core.daylog`), so
no second table keyed by the same names can drift from the fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.core.state import State
    from hub.log.base import Event

Fold = Callable[["State", "Event"], dict[str, Any]]
Line = Callable[["State", "Event"], tuple[int, str]]  # (log level, text) for the operator's log


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    fold: Fold
    moves_status: bool  # folding it can move a site's status (with the clock): the hub re-derives it after
    line: Line | None  # the operator's log line; None for what is not news on the day (attendance, questions)


EVENTS: dict[str, EventType] = {}


def event(*names: str, moves_status: bool = False, line: Line | None = None) -> Callable[[Fold], Fold]:
    """Register the decorated fold for these event types."""
    def register(fold: Fold) -> Fold:
        for name in names:
            EVENTS[name] = EventType(name, fold, moves_status, line)
        return fold
    return register

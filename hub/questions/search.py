"""Vietnamese text search and likely duplicates, so "dao tao" finds "đào tạo" and repeats are caught.

Text is folded (NFD, combining marks stripped, đ -> d, lowercase, apostrophes and hyphens dropped):
people type without diacritics on phones, and "hdrai" or "ia hdrai" for "Ia H'Drai". Duplicates are
scored by Jaccard similarity of folded syllable pairs: Vietnamese words are mostly two syllables, and
pairs keep "lao động" apart from "động lực" where single syllables would not.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from hub.core.model import Question

WORD = re.compile(r"[a-z0-9]+")
# Syllables nearly every question has ("đề nghị ... cho các ...") say nothing about which question it is.
STOP = frozenset("de nghi cho cua va cac co la o tai duoc voi khi con nhieu mot so nay do hon ve tu den "
                 "can da dang se thi ma nhu nhung".split())
SIMILAR_THRESHOLD = 0.15
SIMILAR_LIMIT = 5
# Apostrophes and hyphens inside a name ("Ia H'Drai", "H’Drai", "LĐ-TB&XH") that nobody types the same way.
JOINERS = str.maketrans("", "", "'\u2018\u2019\u02bc-\u2010\u2011")


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lowercase, without diacritics, apostrophes or hyphens: "Đào tạo" -> "dao tao", "Ia H'Drai" -> "ia hdrai"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D").translate(JOINERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    return WORD.findall(fold(text))


@functools.lru_cache(maxsize=65536)
def shingles(text: str) -> frozenset[str]:
    """Folded syllable pairs of a text (single syllables for one-word texts)."""
    w = [x for x in words(text) if x not in STOP]
    return frozenset(" ".join(p) for p in zip(w, w[1:])) or frozenset(w)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' syllable pairs, 0 to 1."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def haystack(q: Question) -> str:
    return fold(" ".join((q.id, q.text, q.delegate.get("name", ""), q.delegate.get("unit", ""))))


def matches(q: Question, query: str) -> bool:
    """Every folded word of the query appears in the question's text, delegate name or unit."""
    hay = haystack(q)
    return all(w in hay for w in words(query))


def search(questions: Iterable[Question], query: str = "", topics: set[str] | None = None,
           statuses: set[str] | None = None, sites: set[str] | None = None) -> list[Question]:
    """Questions that match the query and filters, in queue order."""
    found = [q for q in questions
             if (not topics or q.topic in topics) and (not statuses or q.status in statuses)
             and (not sites or q.site in sites) and matches(q, query)]
    return sorted(found, key=lambda q: (q.position, q.seq))


def similar(target: Question, questions: Iterable[Question], same_topic: bool = True,
            threshold: float = SIMILAR_THRESHOLD, limit: int = SIMILAR_LIMIT) -> list[tuple[Question, float]]:
    """Likely duplicates of `target`: other unmerged questions (of its topic) scored above the threshold."""
    scored = []
    for q in questions:
        if q.id == target.id or q.status == "merged" or (same_topic and q.topic != target.topic):
            continue
        score = similarity(target.text, q.text)
        if score >= threshold:
            scored.append((q, score))
    scored.sort(key=lambda pair: (-pair[1], pair[0].seq))
    return scored[:limit]

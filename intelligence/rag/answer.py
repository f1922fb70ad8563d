"""Grounded answers: packed chunks in, Claude's answer with citations to those chunks out.

Each chunk goes into the prompt under its id in square brackets; Claude is told to cite
with those ids. Citations are parsed back and kept only when they name a chunk that was
actually given, so a made-up id never reaches the user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from intelligence.rag.types import Hit

SYSTEM = (
    "You answer questions using only the numbered sources provided. After each claim, cite the "
    "source ids you used in square brackets, e.g. [doc-1#0]. If the sources do not contain the "
    "answer, say that you do not know. Never cite an id that is not listed."
)
_CITE = re.compile(r"\[([^\[\]\n]{1,300})\]")


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str


def build_prompt(question: str, hits: Sequence[Hit]) -> Prompt:
    """The system and user messages for ``question`` over ``hits``."""
    blocks = []
    for hit in hits:
        head = f"[{hit.id}] (source: {hit.source}{', title: ' + hit.title if hit.title else ''})"
        blocks.append(f"{head}\n{hit.text}")
    sources = "\n\n".join(blocks) if blocks else "(no sources found)"
    return Prompt(SYSTEM, f"Sources:\n\n{sources}\n\nQuestion: {question}")


def cited_ids(answer: str, hits: Sequence[Hit]) -> list[str]:
    """Ids of ``hits`` the answer cites, in first-cited order (``[a, b]`` and ``[a][b]`` both work)."""
    known = {h.id for h in hits}
    found: list[str] = []
    for group in _CITE.findall(answer):
        for part in re.split(r"[,;]\s*", group):
            cid = part.strip()
            if cid in known and cid not in found:
                found.append(cid)
    return found

"""The deterministic offline stand-in for Claude (``CIRCUIT_LLM_OFFLINE=true`` and no API key).

No model: extractive summaries (the sentences richest in the text's frequent words),
classification by keyword overlap, and extraction by simple patterns (``Key: value`` lines,
e-mails, phone numbers, URLs, dates, numbers, enum values). The same input always gives the
same output, so demos and tests that run without a key stay reproducible.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

__all__ = ["classify", "extract", "summarize"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its of on or our she so that the "
    "their them they this to was we were what when which who will with you your".split()
)
SENTENCES = {"short": 2, "medium": 4, "long": 8}

_PATTERNS = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "uri": re.compile(r"https?://[^\s,;]+"),
    "date": re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),
    "phone": re.compile(r"\+?\d[\d ().-]{6,}\d"),
}


def words(text: str) -> list[str]:
    """Lower-case content words, stop words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _stem(word: str) -> str:
    # Good enough to match "pricing" with "price" or "refunds" with "refund".
    return word[:5] if len(word) > 5 else word.rstrip("s")


def summarize(text: str, focus: str | None = None, length: str = "short") -> str:
    """The ``length``'s number of sentences that score highest, in their original order."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    n = SENTENCES.get(length, 2)
    if len(sentences) <= n:
        return " ".join(sentences)
    freq = Counter(_stem(w) for w in words(text))
    wanted = {_stem(w) for w in words(focus or "")}

    def score(item: tuple[int, str]) -> tuple[float, int]:
        stems = [_stem(w) for w in words(item[1])] or [""]
        base = sum(freq[s] for s in stems) / len(stems)
        bonus = 10.0 * sum(1 for s in stems if s in wanted)
        return (-(base + bonus), item[0])  # ties: the earlier sentence

    chosen = sorted(sorted(enumerate(sentences), key=score)[:n])
    return " ".join(s for _, s in chosen)


def classify(text: str, labels: list[str]) -> str:
    """The label whose words occur most in ``text``; ties go to the label listed first."""
    counts = Counter(_stem(w) for w in words(text))
    lowered = text.lower()

    def score(label: str) -> float:
        phrase = 2.0 * lowered.count(label.lower())
        return phrase + sum(counts[_stem(w)] for w in words(label.replace("_", " ").replace("-", " ")))

    best = max(range(len(labels)), key=lambda i: (score(labels[i]), -i))
    return labels[best]


def _key_value(text: str, name: str) -> str | None:
    spelled = re.escape(name).replace("_", "[ _-]?").replace(r"\ ", "[ _-]?")
    m = re.search(rf"(?im)^\W*{spelled}\s*[:=-]\s*(.+?)\s*$", text) or re.search(
        rf"(?i)\b{spelled}\b\s*(?:is|:|=)\s*([^.;,\n]+)", text
    )
    return m.group(1).strip().strip("\"'") if m else None


def _number(raw: str | None, text: str, name: str, integer: bool) -> int | float | None:
    spelled = re.escape(name).replace("_", r"\W*")
    source = raw or (m.group(0) if (m := re.search(rf"(?i){spelled}\D{{0,30}}-?\d[\d,]*(?:\.\d+)?", text)) else "")
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", source)
    if not found:
        return None
    value = float(found.group(0).replace(",", ""))
    return int(value) if integer else value


def _field(text: str, name: str, prop: dict[str, Any]) -> Any:
    kind = prop.get("type")
    raw = _key_value(text, name)
    if "enum" in prop:
        pool = (raw or text).lower()
        return next((o for o in prop["enum"] if str(o).lower() in pool), None)
    if kind in ("integer", "number"):
        return _number(raw, text, name, kind == "integer")
    if kind == "boolean":
        return None if raw is None else raw.lower() in ("yes", "true", "y", "1")
    fmt = str(prop.get("format", ""))
    for key, pattern in _PATTERNS.items():
        if key in fmt or key in name.lower() or (key == "uri" and ("url" in name.lower() or "website" in name)):
            m = pattern.search(raw or "") or pattern.search(text)
            return m.group(0).strip() if m else None
    return raw if kind in (None, "string") else None


def extract(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Fill the top-level ``properties`` of an object schema that a simple pattern finds in ``text``."""
    found: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        value = _field(text, name, prop if isinstance(prop, dict) else {})
        if value is not None:
            found[name] = value
    return found

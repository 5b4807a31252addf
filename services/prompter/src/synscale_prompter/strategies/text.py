"""Text clean-up shared by the model-backed strategies: name matching and dedup."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PARENTHETICAL = re.compile(r"\s*\([^)]*\)")
_SPACE = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s.!?,;:]+$")
_QUOTES = "\"'`“”‘’"


def name_variants(name: str) -> list[str]:
    """The ways a sentence may name a class: 'kite (bird of prey)' -> ['kite'];
    'baluster / handrail' -> ['baluster', 'handrail']."""
    core = _PARENTHETICAL.sub("", name)
    variants = [v.strip() for v in core.split("/") if v.strip()]
    return variants or [name.strip()]


def name_pattern(name: str) -> re.Pattern[str]:
    """Case-insensitive whole-word match of any variant, tolerant of spaces/hyphens
    between its words ('T-shirt' matches 't-shirt', 'T shirt', 'tshirt') and of a
    plural ending."""
    alternatives = []
    for variant in name_variants(name):
        words = [re.escape(w) for w in re.split(r"[\s_\-]+", variant) if w]
        alternatives.append(r"[\s_\-]*".join(words))
    body = "|".join(alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?:e?s)?(?!\w)", re.IGNORECASE)


def clean(text: str) -> str:
    """One line, single spaces, no wrapping quotes."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _SPACE.sub(" ", first).strip().strip(_QUOTES).strip()


def dedup_key(text: str) -> str:
    """Texts that differ only in case, spacing or final punctuation are duplicates."""
    return _TRAILING.sub("", _SPACE.sub(" ", text).strip().lower())


def dedupe(texts: Iterable[str]) -> list[str]:
    """Cleaned, non-empty, first occurrence of each text kept, in order."""
    seen: set[str] = set()
    out = []
    for raw in texts:
        text = clean(raw)
        key = dedup_key(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def select_sentences(candidates: Iterable[str], name: str, k: int) -> list[str]:
    """word2sen's filter: dedupe, keep only sentences that name the class, at most k."""
    pattern = name_pattern(name)
    return [s for s in dedupe(candidates) if pattern.search(s)][:k]

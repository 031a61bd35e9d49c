"""Parsers of judge outputs: pairwise verdict labels and 1-10 ratings.

A parser never guesses. It returns a :class:`Parsed` whose ``status`` is ``ok`` with the value,
or says why there is no value: ``missing`` (no label at all; the judge is asked once more),
``ambiguous`` (two different labels), ``invalid`` (a label outside the allowed set),
``out_of_range`` (a rating outside 1-10) or ``error`` (empty output, or FastChat's ``$ERROR$``
placeholder of a failed call). Callers count these, retry once and report them; they are never
scored.

Verdicts (pairwise):

- ``[[A>>B]]`` format, Arena-Hard-Auto: every match of ``\\[\\[([AB<>=]+)\\]\\]`` (their
  ``regex_pattern``); one distinct label -> that label, several distinct -> ambiguous, none ->
  missing (Arena-Hard then asks "continue your judgment and finish by outputting a final verdict
  label"). Labels are normalised to :data:`LABELS` (``B<A`` = ``A>B``, ``B=A`` = ``A=B``, ...);
  Arena-Hard's own ``get_score`` compares the raw strings, so ``[[A>B]] ... [[B<A]]`` is
  ambiguous there and ``A>B`` here (the only difference).
- ``[[A]]`` format, FastChat MT-Bench pairwise: ``[[A]]`` -> A>B, ``[[B]]`` -> B>A, ``[[C]]`` ->
  A=B (FastChat takes the first of A, B, C found; here two different ones are ambiguous).

Ratings (single-answer grading), by ``rule``:

- ``"openarena"`` (default): all ``[[x]]`` with x an integer or decimal; one distinct value in
  [1, 10] -> ok; several distinct -> ambiguous; none -> missing.
- ``"fastchat"``: FastChat ``run_judge_single`` exactly: the first ``\\[\\[(\\d+\\.?\\d*)\\]\\]``,
  else the first ``\\[(\\d+\\.?\\d*)\\]``; no range check.
- ``"arena-bench-v1"``: arena-hard-auto's early ``judge.py`` (the arena-bench-v1 judgments):
  ``\\[\\[(\\d*?)\\]\\]``, exactly one non-empty match -> int, else no score.

Source: arena-hard-auto gen_judgment.py ``get_score`` and config regex_pattern; FastChat
fastchat/llm_judge/common.py ``run_judge_single`` / ``run_judge_pair``; arena-hard-auto
judge.py (commit 4f507a2).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = [
    "LABELS",
    "Parsed",
    "RATING_RULES",
    "explain_unparseable",
    "label_outcome",
    "normalize_label",
    "parse_rating",
    "parse_verdict",
    "swap_label",
]

#: The five verdicts, from "A much better" to "B much better".
LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")

_NORMAL = {
    "A>>B": "A>>B", "B<<A": "A>>B",
    "A>B": "A>B", "B<A": "A>B",
    "A=B": "A=B", "B=A": "A=B",
    "B>A": "B>A", "A<B": "B>A",
    "B>>A": "B>>A", "A<<B": "B>>A",
}
_FASTCHAT_PAIR = {"A": "A>B", "B": "B>A", "C": "A=B"}
_SWAP = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}

_VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
_VERDICT_ABC = re.compile(r"\[\[([ABC])\]\]")
_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_FC_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_FC_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
_AB_RATING = re.compile(r"\[\[(\d*?)\]\]")
_SLASH_TEN = re.compile(r"\b(\d+(?:\.\d+)?)\s*/\s*10\b")
ERROR_OUTPUT = "$ERROR$"  # FastChat's API_ERROR_OUTPUT

RATING_RULES = ("openarena", "fastchat", "arena-bench-v1")
STATUSES = ("ok", "missing", "ambiguous", "invalid", "out_of_range", "error")


@dataclass(frozen=True)
class Parsed:
    """The result of parsing one judge output.

    Attributes: value, the label (str, one of :data:`LABELS`) or rating (float) when status is
    'ok', else None; status, one of 'ok', 'missing', 'ambiguous', 'invalid', 'out_of_range',
    'error'; reason, a one-line explanation when not ok; matches, the raw labels found.
    """

    value: str | float | None
    status: str
    reason: str = ""
    matches: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def retryable(self) -> bool:
        """True when asking the judge to finish its judgment may help (no label at all)."""
        return self.status in ("missing", "error")


def _error_or_none(text: str | None) -> Parsed | None:
    if text is None or not text.strip():
        return Parsed(None, "error", "empty judge output")
    if text.strip() == ERROR_OUTPUT:
        return Parsed(None, "error", "the judge call failed (FastChat's $ERROR$ placeholder)")
    return None


def parse_verdict(text: str | None, output_format: str = "[[A>>B]]") -> Parsed:
    """The verdict of a pairwise judgment.

    Parameters: text, the judge's output; output_format, '[[A>>B]]' (Arena-Hard's five labels)
    or '[[A]]' (FastChat's A / B / C).
    Returns: Parsed with value in :data:`LABELS` when ok (from A's point of view).
    Raises: ValueError for an unknown output_format.
    """
    if output_format not in ("[[A>>B]]", "[[A]]"):
        raise ValueError(f"unknown verdict format {output_format!r}")
    bad = _error_or_none(text)
    if bad is not None:
        return bad
    assert text is not None
    if output_format == "[[A]]":
        found = tuple(_VERDICT_ABC.findall(text))
        labels = {_FASTCHAT_PAIR[m] for m in found}
    else:
        found = tuple(m for m in _VERDICT.findall(text) if m)
        unknown = [m for m in found if m not in _NORMAL]
        if unknown:
            return Parsed(None, "invalid", f"label [[{unknown[0]}]] is not one of " + ", ".join(LABELS), found)
        labels = {_NORMAL[m] for m in found}
    if not labels:
        return Parsed(None, "missing", explain_unparseable(text, "verdict"), found)
    if len(labels) > 1:
        return Parsed(None, "ambiguous", "several different verdicts: " + ", ".join(sorted(set(found))), found)
    return Parsed(labels.pop(), "ok", "", found)


def parse_rating(text: str | None, rule: str = "openarena", low: float = 1, high: float = 10) -> Parsed:
    """The 1-10 rating of a single-answer grading.

    Parameters: text; rule, one of :data:`RATING_RULES` (module docstring); low, high, the
    accepted range (rule 'openarena' only).
    Returns: Parsed with a float value when ok.
    Raises: ValueError for an unknown rule.
    """
    if rule not in RATING_RULES:
        raise ValueError(f"unknown rating rule {rule!r}; expected one of {', '.join(RATING_RULES)}")
    bad = _error_or_none(text)
    if bad is not None:
        return bad
    assert text is not None
    if rule == "fastchat":
        m = _FC_RATING.search(text) or _FC_RATING_BACKUP.search(text)
        if not m:
            return Parsed(None, "missing", explain_unparseable(text, "rating"))
        return Parsed(float(ast.literal_eval(m.group(1))), "ok", "", (m.group(0),))
    if rule == "arena-bench-v1":
        found = tuple(m for m in _AB_RATING.findall(text) if m != "")
        if len(found) == 1:
            return Parsed(float(int(found[0])), "ok", "", found)
        if found:
            return Parsed(None, "ambiguous", f"{len(found)} [[rating]] labels (the rule needs exactly one)", found)
        return Parsed(None, "missing", explain_unparseable(text, "rating", integer_only=True))
    found = tuple(_RATING.findall(text))
    values = {float(v) for v in found}
    if not values:
        return Parsed(None, "missing", explain_unparseable(text, "rating"), found)
    if len(values) > 1:
        return Parsed(None, "ambiguous", "several different ratings: " + ", ".join(sorted(set(found))), found)
    v = values.pop()
    if not low <= v <= high:
        return Parsed(None, "out_of_range", f"rating {v:g} is outside {low:g}..{high:g}", found)
    return Parsed(v, "ok", "", found)


def explain_unparseable(text: str, what: str = "verdict", integer_only: bool = False) -> str:
    """Why a judge output has no usable label, in one line (for reports).

    Distinguishes: a decimal rating under an integer-only rule; a rating written another way
    ('8/10', 'Rating: [8]'); a label cut off at the end ('[[1'); an output that stops mid-way
    (no final punctuation: the judge hit its token limit); otherwise 'no label'.
    """
    tail = text.rstrip()
    if what == "rating":
        if integer_only:
            dec = re.search(r"\[\[(\d+\.\d+)\]\]", text)
            if dec:
                return f"decimal rating [[{dec.group(1)}]]: the integer-only rule \\[\\[(\\d*?)\\]\\] rejects it"
        slash = _SLASH_TEN.search(text)
        if slash:
            return f"rating written as '{slash.group(0)}' instead of [[rating]]"
        single = re.search(r"(?i)rating\W{0,3}(\[\d+(?:\.\d+)?\])", text)
        if single:
            return f"single-bracket rating '{single.group(1)}' instead of [[rating]]"
    if re.search(r"\[\[?[^\]\n]{0,5}$", tail):
        return "label cut off at the end of the output (token limit)"
    if tail and tail[-1] not in ".!?)]\"'`*":
        return "output stops mid-sentence without a label (token limit)"
    return f"no [[{'rating' if what == 'rating' else 'verdict'}]] label in the output"


def normalize_label(raw: object) -> str | None:
    """A raw verdict string as one of :data:`LABELS` (``B<A`` -> ``A>B``, ``B=A`` -> ``A=B``,
    ...), or None for anything else (another string, None, a number).

    Source: the ten spellings arena-hard-auto's ``[[A>>B]]`` regex lets through (module docstring).
    """
    return _NORMAL.get(raw) if isinstance(raw, str) else None


def swap_label(label: str) -> str:
    """The same verdict with A and B exchanged ('A>>B' -> 'B>>A'). Raises KeyError for a bad label."""
    return _SWAP[label]


def label_outcome(label: str, much_better_weight: int = 3) -> tuple[float, int]:
    """(score of A, weight): A>>B -> (1, w), A>B -> (1, 1), A=B -> (0.5, 1), B>A -> (0, 1),
    B>>A -> (0, w). Arena-Hard counts "much better" as ``w`` = 3 wins (show_result.py WEIGHT=3).
    Raises: KeyError for a label outside :data:`LABELS`.
    """
    return {
        "A>>B": (1.0, much_better_weight),
        "A>B": (1.0, 1),
        "A=B": (0.5, 1),
        "B>A": (0.0, 1),
        "B>>A": (0.0, much_better_weight),
    }[label]

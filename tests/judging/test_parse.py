"""Verdict and rating parsers, on hand-written cases and on real judge outputs: the 4,800 GPT-4
gradings of arena-bench-v1 (arena-hard-auto history) and FastChat's MT-Bench gradings
(RouteLLM's judgements.jsonl)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from openarena.judging.parse import LABELS, label_outcome, normalize_label, parse_rating, parse_verdict, swap_label
from tests.conftest import shared_file

JUDGMENTS = "arena_hard_auto/data/arena-bench-v1/model_judgment"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def gradings() -> list[dict]:
    folder = shared_file(JUDGMENTS)
    rows = []
    for f in sorted(folder.glob("*.jsonl")):
        rows += read_jsonl(f)
    return rows


def _stored(r: dict) -> float | None:
    return None if r["score"] is None else float(r["score"])


def test_all_4800_gpt4_gradings_parse_to_the_stored_score(gradings: list[dict]) -> None:
    """With the rule of the judge script that wrote them (arena-hard-auto judge.py:
    ``\\[\\[(\\d*?)\\]\\]``, exactly one integer label), every one of the 4,800 gradings parses to
    the score stored beside it, including the 40 stored as null."""
    assert len(gradings) == 4800
    assert len({f for f in shared_file(JUDGMENTS).glob("*.jsonl")}) == 16
    got = [parse_rating(r["judgment"], "arena-bench-v1") for r in gradings]
    mismatches = [(r["question_id"], r["model"]) for r, p in zip(gradings, got) if p.value != _stored(r)]
    assert mismatches == []
    assert sum(p.value is None for p in got) == 40
    assert Counter(p.value for p in got if p.ok)[10.0] == 678 + 59  # ints 10 and floats 10.0 stored


def test_default_rule_on_the_4800_and_the_exceptions_with_reasons(gradings: list[dict]) -> None:
    """Our default rule (any [[x]], decimals allowed, one distinct value in 1-10) agrees on
    4,796; the 4 differences are decimal ratings the integer-only rule dropped; the other 36
    stored nulls are unparseable here too, each with a reason."""
    diff, reasons = [], Counter()
    for r in gradings:
        p = parse_rating(r["judgment"])
        if p.value != _stored(r):
            diff.append((p.value, _stored(r)))
        if not p.ok:
            reasons[p.reason] += 1
            assert _stored(r) is None
    assert sorted(diff) == [(7.5, None), (9.5, None), (9.5, None), (9.5, None)]
    assert sum(reasons.values()) == 36
    assert reasons["output stops mid-sentence without a label (token limit)"] == 30
    assert reasons["label cut off at the end of the output (token limit)"] == 1
    assert reasons["rating written as '8/10' instead of [[rating]]"] == 1
    assert reasons["rating written as '9/10' instead of [[rating]]"] == 1
    assert reasons["the judge call failed (FastChat's $ERROR$ placeholder)"] == 1
    assert reasons["no [[rating]] label in the output"] == 2
    # under the integer-only rule, the decimal ones are explained as such
    dec = [parse_rating(r["judgment"], "arena-bench-v1") for r in gradings if "[[9.5]]" in r["judgment"]]
    assert dec and all("decimal rating [[9.5]]" in p.reason for p in dec)


def test_fastchat_rule_reproduces_mt_bench_gradings() -> None:
    """RouteLLM's 320 GPT-4 MT-Bench gradings (FastChat format): FastChat's rule gives the stored
    score for all of them; the default rule agrees on every one that has a [[rating]]."""
    rows = read_jsonl(shared_file("routellm/routellm/evals/mt_bench/judgements.jsonl"))
    assert len(rows) == 320
    for r in rows:
        p = parse_rating(r["judgment"], "fastchat")
        assert (p.value if p.ok else -1) == float(r["score"])
        d = parse_rating(r["judgment"])
        assert d.ok and d.value == float(r["score"])


@pytest.mark.parametrize(
    "text, value, status",
    [
        ("Thorough answer.\n\nMy final verdict is: [[A>>B]]", "A>>B", "ok"),
        ("[[B>A]]", "B>A", "ok"),
        ("first [[A<B]] then again [[B>A]]", "B>A", "ok"),  # the same verdict written two ways
        ("tie: [[B=A]]", "A=B", "ok"),
        ("[[A>B]] ... on second thought [[B>>A]]", None, "ambiguous"),
        ("no verdict at all.", None, "missing"),
        ("I stopped in the mid", None, "missing"),
        ("[[A>>>B]]", None, "invalid"),
        ("", None, "error"),
        ("$ERROR$", None, "error"),
    ],
)
def test_verdicts(text: str, value: str | None, status: str) -> None:
    p = parse_verdict(text)
    assert (p.value, p.status) == (value, status)
    assert p.ok == (status == "ok") and (p.reason == "") == p.ok


def test_fastchat_pair_format_and_helpers() -> None:
    assert parse_verdict("[[A]]", "[[A]]").value == "A>B"
    assert parse_verdict("[[C]]", "[[A]]").value == "A=B"
    assert parse_verdict("[[A]] or [[B]]", "[[A]]").status == "ambiguous"
    assert [swap_label(x) for x in LABELS] == list(reversed(LABELS))
    assert label_outcome("A>>B") == (1.0, 3) and label_outcome("B>>A") == (0.0, 3) and label_outcome("A=B") == (0.5, 1)
    with pytest.raises(ValueError):
        parse_verdict("x", "[[rating]]")


def test_normalize_label() -> None:
    assert [normalize_label(x) for x in LABELS] == list(LABELS)
    assert [normalize_label(x) for x in ("B<<A", "B<A", "B=A", "A<B", "A<<B")] == ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
    assert [normalize_label(x) for x in ("A>>>B", "", None, 3, "a>b")] == [None] * 5


@pytest.mark.parametrize(
    "text, rule, value, status",
    [
        ("Rating: [[7]]", "openarena", 7.0, "ok"),
        ("Rating: [[7.5]]", "openarena", 7.5, "ok"),
        ("[[7]] and later [[7]]", "openarena", 7.0, "ok"),
        ("[[7]] and later [[3]]", "openarena", None, "ambiguous"),
        ("[[7]] and later [[3]]", "fastchat", 7.0, "ok"),  # FastChat takes the first
        ("[[11]]", "openarena", None, "out_of_range"),
        ("Rating: [8]", "openarena", None, "missing"),
        ("Rating: [8]", "fastchat", 8.0, "ok"),  # FastChat's backup pattern
        ("[[7]] [[7]]", "arena-bench-v1", None, "ambiguous"),  # exactly one label needed
    ],
)
def test_ratings(text: str, rule: str, value: float | None, status: str) -> None:
    p = parse_rating(text, rule)
    assert (p.value, p.status) == (value, status)

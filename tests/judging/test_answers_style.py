"""Answer files: reading arena-hard and FastChat layouts, and the style metadata of the
Arena-Hard-Auto v2.0 answers recomputed by the shared style code (openarena.data.style)."""

from __future__ import annotations

import time

import pytest

import openarena.data.style as style
from openarena.judging.answer_records import answer_metadata
from openarena.judging.answers import read_answers
from tests.conftest import shared_file

V2 = "arena_hard_auto/data/arena-hard-v2.0/model_answer"


@pytest.fixture(scope="module")
def v2_answers() -> dict:
    return read_answers(shared_file(V2))


def test_v2_answers_metadata_agree_with_the_shipped_metadata(v2_answers: dict) -> None:
    """All 1,498 answers (o3-mini 750, sky-t1-32b 748): token_len with o200k_base and the
    header / list / bold counts recomputed from the text equal the metadata in the files."""
    assert sorted(v2_answers) == ["o3-mini-2025-01-31", "sky-t1-32b"]
    answers = [a for m in v2_answers.values() for a in m.values()]
    assert len(answers) == 1498 and {m: len(v) for m, v in v2_answers.items()} == {"o3-mini-2025-01-31": 750, "sky-t1-32b": 748}
    t0 = time.perf_counter()
    mismatched = [a.uid for a in answers if answer_metadata(a.turns) != {k: a.metadata[k] for k in ("token_len", "header_count", "list_count", "bold_count")}]
    assert mismatched == []
    assert time.perf_counter() - t0 < 30
    # the summed features used by style control
    a = v2_answers["o3-mini-2025-01-31"]["0253f09025cc40cd"]
    assert a.style() == {"tokens": 179, "headers": 0, "lists": 0, "bold": 0}


def test_metadata_is_the_shared_style_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """answer_metadata has no implementation of its own: it calls openarena.data.style.answer_style."""
    seen = []

    def fake(text, encoding):
        seen.append(encoding)
        return {"tokens": 1, "headers": 0, "lists": 0, "bold": 0, "header_count": {"h1": 0}, "list_count": {}, "bold_count": {}}

    monkeypatch.setattr(style, "answer_style", fake)
    assert answer_metadata(["x"])["token_len"] == 1 and seen == ["o200k_base"]


def test_fastchat_and_v01_answer_layouts() -> None:
    v01 = read_answers(shared_file("arena_hard_auto/data/arena-hard-v0.1/model_answer/gpt-4-0314.jsonl"))
    assert list(v01) == ["gpt-4-0314"] and len(v01["gpt-4-0314"]) == 500
    a = v01["gpt-4-0314"]["0122ab60646b4961bc39e9c03bdf6bcc"]
    assert a.text.startswith("To implement a SCIM")
    fc = read_answers(shared_file("fastchat/fastchat/llm_judge/data/mt_bench/model_answer/gpt-4o.jsonl"))
    ans = fc["gpt-4o"]
    assert len(ans) == 80 and all(len(x.turns) == 2 for x in ans.values())

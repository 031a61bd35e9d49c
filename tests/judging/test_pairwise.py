"""Pairwise rendering and the conversion of judgments to battles (ours and arena-hard-auto's
record layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.pairwise import judgments_to_battles, load_judgments, render_pair
from openarena.judging.prompts import get_prompt
from openarena.judging.questions import Question


def test_render_fastchat_pair_prompts() -> None:
    q = Question("1", "math", ("What is 2+2?", "And 3+3?"), reference=("4", "6"))
    a, b = Answer("1", "x", ("four", "six")), Answer("1", "y", ("5", "7"))
    one = render_pair(get_prompt("pair-v2"), q, a, b)[1]["content"]
    assert "[User Question]\nWhat is 2+2?" in one and "[The Start of Assistant A's Answer]\nfour\n" in one and "\n5\n" in one
    multi = render_pair(get_prompt("pair-math-v1-multi-turn"), q, a, b)[1]["content"]
    assert "### Reference answer:\n4" in multi and "### Assistant B:\n7" in multi and "### User:\nAnd 3+3?" in multi
    ah = render_pair(get_prompt("arena-hard"), Question("1", "c", ("Q",)), Answer("1", "x", ("AX",)), Answer("1", "y", ("BY",)))[1]["content"]
    assert ah.index("AX") < ah.index("BY")
    with pytest.raises(DataError, match="ref_answer_1"):
        render_pair(get_prompt("pair-math-v1"), Question("1", "math", ("Q",)), a, b)


def test_arena_hard_judgment_layout(tmp_path: Path) -> None:
    """arena-hard-auto writes one record per question with two games: game 0 with the baseline
    as A, game 1 swapped. A>>B in game 0 = the baseline much better = 3 losses of the model."""
    f = tmp_path / "gpt-4-1106-preview" / "m.jsonl"
    f.parent.mkdir()
    rows = [
        {"question_id": "q1", "model": "m", "judge": "gpt-4-1106-preview", "games": [{"score": "A>>B"}, {"score": "A>B"}]},
        {"question_id": "q2", "model": "m", "judge": "gpt-4-1106-preview", "games": [{"score": "B>A"}, {"score": None}]},
        {"question_id": "q3", "model": "m", "judge": "gpt-4-1106-preview", "games": [{"score": "A=B"}, {"score": "B<A"}]},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="baseline"):
        load_judgments(tmp_path)
    recs = load_judgments(tmp_path, baseline="gpt-4-0314")
    assert len(recs) == 6 and recs[0]["judge"]["model"] == "gpt-4-1106-preview"
    b, info = judgments_to_battles(recs)
    assert info["dropped_questions"] == 1  # q2: game 2 unparseable -> the pair is left out
    w = b.frame.groupby("question_id")["winner"].apply(list).to_dict()
    assert w["q1"] == ["model_a"] * 3 + ["model_b"]
    assert w["q3"] == ["tie", "model_b"]  # "B<A" with the model as A = A>B = the model wins
    assert set(b.frame["model_a"]) == {"gpt-4-0314"} and set(b.frame["model_b"]) == {"m"}
    b1, info1 = judgments_to_battles(recs, drop_incomplete=False)  # v0.1: every parsed game counts
    assert info1["dropped_questions"] == 0 and b1.frame.loc[b1.frame["question_id"] == "q2", "winner"].tolist() == ["model_b"]
    with pytest.raises(DataError, match="no usable judgment"):
        judgments_to_battles([r for r in recs if r["uid"] == "q2"])

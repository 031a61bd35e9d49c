"""Judge audits on hand-made judgment records (every share counted by hand)."""

from __future__ import annotations

import pytest

from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.audits import length_bias, model_family, position_bias, self_preference


def rec(model: str, uid: str, game: int, label: str | None, judge: str = "j", baseline: str = "base") -> dict:
    a, b = (baseline, model) if game == 1 else (model, baseline)
    return {"uid": uid, "model": model, "baseline": baseline, "game": game, "label": label,
            "status": "ok" if label else "missing", "assistant_a": a, "assistant_b": b, "judge": {"model": judge}}


def test_position_bias_counts() -> None:
    records = [
        rec("m", "q1", 1, "B>A"), rec("m", "q1", 2, "A>B"),  # model wins both: consistent, same label
        rec("m", "q2", 1, "A>B"), rec("m", "q2", 2, "A>B"),  # judge picks A both times: reversal
        rec("m", "q3", 1, "A=B"), rec("m", "q3", 2, "A>>B"),  # tie vs win: a flip, no reversal
        rec("m", "q4", 1, "B>A"), rec("m", "q4", 2, "B>A"),  # picks B both times: reversal
        rec("m", "q5", 1, "B>A"), rec("m", "q5", 2, None),  # unparseable: left out
    ]
    pb = position_bias(records)
    assert pb.pairs == 4
    assert (pb.flip, pb.reversal, pb.first, pb.second, pb.exact) == (0.75, 0.5, 0.25, 0.25, 0.25)
    assert pb.flip_ci[0] < 0.75 < pb.flip_ci[1]
    assert pb.by_judge.set_index("judge").loc["j", "pairs"] == 4
    with pytest.raises(DataError):
        position_bias([rec("m", "q1", 1, "A>B")])


def test_length_bias() -> None:
    def ans(model: str, uid: str, tokens: int) -> Answer:
        return Answer(uid, model, ("x",), {"token_len": tokens, "header_count": {}, "list_count": {}, "bold_count": {}})

    answers = {"base": {"q1": ans("base", "q1", 100), "q2": ans("base", "q2", 100), "q3": ans("base", "q3", 100)},
               "m": {"q1": ans("m", "q1", 300), "q2": ans("m", "q2", 50), "q3": ans("m", "q3", 100)}}
    records = [
        rec("m", "q1", 1, "B>A"),  # longer (m, as B) wins -> 1
        rec("m", "q1", 2, "A=B"),  # tie -> 0.5
        rec("m", "q2", 1, "A>>B"),  # longer (base, as A) wins -> 1
        rec("m", "q2", 2, "A>B"),  # shorter (m, as A) wins -> 0
        rec("m", "q3", 1, "A>B"),  # equal length: left out
    ]
    lb = length_bias(records, answers)
    assert lb.games == 4 and lb.longer_win_rate == pytest.approx(2.5 / 4) and lb.ties == 0.25


def test_self_preference_with_two_judges() -> None:
    """gpt judge gives its family's model 3 extra wins out of 4 games; the claude judge is
    neutral. Scores per (model, judge) from the model's side."""
    records = []
    for judge, gpt_labels in (("gpt-4-judge", ["B>A", "A>B", "B>A", "A>B"]), ("claude-3-judge", ["A=B", "A=B", "A=B", "A=B"])):
        for i, lab in enumerate(gpt_labels):
            records.append(rec("gpt-x", f"q{i}", 1 + i % 2, lab, judge))
        for i in range(4):
            records.append(rec("claude-y", f"q{i}", 1 + i % 2, "A=B", judge))
            records.append(rec("other-z", f"q{i}", 1 + i % 2, "A=B", judge))
    sp = self_preference(records)
    assert sp.multi_judge and sp.scores.loc["gpt-x", "gpt-4-judge"] == 100.0 and sp.scores.loc["gpt-x", "claude-3-judge"] == 50.0
    t = sp.table.set_index("judge")
    assert t.loc["gpt-4-judge", "family"] == "openai" and t.loc["gpt-4-judge", "own_models"] == 1
    assert t.loc["gpt-4-judge", "own_boost"] == 50.0 and t.loc["gpt-4-judge", "other_boost"] == 0.0
    assert t.loc["gpt-4-judge", "self_preference"] == 50.0
    assert t.loc["claude-3-judge", "self_preference"] == pytest.approx(0.0 - (-50.0 / 2))  # own 0, others (gpt-x -50, other 0)
    one = self_preference([r for r in records if r["judge"]["model"] == "gpt-4-judge"])
    assert not one.multi_judge and "one judge only" in one.note
    assert one.table.loc[0, "own_score"] == 100.0 and one.table.loc[0, "other_score"] == 50.0


def test_model_family() -> None:
    assert [model_family(m) for m in ("gpt-4-0314", "o3-mini-2025-01-31", "claude-3-opus-20240229", "gemini-1.5-pro",
                                      "meta-llama/Llama-3-70b", "Mixtral-8x7B-Instruct-v0.1", "Qwen1.5-72B-Chat", "zephyr-7b")] == [
        "openai", "openai", "anthropic", "google", "meta", "mistral", "alibaba", "zephyr"]

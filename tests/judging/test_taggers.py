"""LLM category taggers against a mock OpenAI-compatible server on loopback (moved from
tests/data/test_categories.py with the taggers)."""

from __future__ import annotations

import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.judging.taggers import LLM_TAGGERS, TagCache, run_taggers, tag_battles


def _battles(prompts: list[str]) -> BattleTable:
    conv = lambda p, a: [{"role": "user", "content": p}, {"role": "assistant", "content": a}]  # noqa: E731
    return BattleTable(
        pd.DataFrame(
            {
                "model_a": ["m1"] * len(prompts),
                "model_b": ["m2"] * len(prompts),
                "winner": ["model_a"] * len(prompts),
                "conversation_a": [conv(p, f"answer A to {p}") for p in prompts],
                "conversation_b": [conv(p, f"answer B to {p}") for p in prompts],
            }
        ),
        "mock",
    )


@pytest.fixture()
def mock_server():
    mock = pytest.importorskip("openarena.demo.mock_server")
    rules = {
        # hard prompt criteria (the system prompt names the 7 criteria)
        r"P-HARD": "[1, 2, 3, 4, 5, 6, 7]",
        r"P-EASY": "[1]",
        r"P-TWOLISTS": "Maybe [1, 2] or rather [3, 4]",  # FastChat would say []: unparseable
        r"P-PROSE": "It satisfies specificity and complexity.",  # no list at all
    }
    with mock.MockServer(
        {
            "labeler": mock.Behaviour.by_rules(rules, default="[2]"),
            "if-labeler": mock.Behaviour.by_rules({r"P-HARD": "<score>5</score>", r"P-EASY": "<score>2</score>", r"P-TWOLISTS": "<score>3</score> or <score>4</score>"}, default="Score: 4"),
            "yesno": mock.Behaviour.by_rules({r"P-HARD": "<decision>\nyes\n</decision>", r"P-EASY": "<decision>\n[no]\n</decision>"}, default="<decision>maybe</decision>"),
            "refuser": mock.Behaviour.by_rules({r"answer B to P-HARD": "<decision>\nB\n</decision>"}, default="<decision>neither</decision>"),
            "down": mock.Behaviour.failing(503),
        }
    ) as srv:
        yield srv


def test_llm_hard_prompt_parse_cache_and_report(mock_server, tmp_path) -> None:
    table = _battles(["P-HARD", "P-EASY", "P-TWOLISTS", "P-PROSE", "P-HARD"])  # a repeated prompt
    model = mock_server.model_config("labeler")
    seen: list[tuple[int, int]] = []
    cache_path = tmp_path / "tags.sqlite"
    out, reports = run_taggers(table, ["hard_prompt"], client=model, cache=cache_path, concurrency=3, progress=lambda d, t: seen.append((d, t)))
    f = out.frame
    assert f["category_hard_6"].tolist()[:2] == [True, False] and f["category_hard_6"].isna().tolist() == [False, False, True, True, False]
    assert f["criteria_specificity"].tolist()[:2] == [True, True] and f["criteria_real_world"].tolist()[:2] == [True, False]
    rep = reports[0]
    assert (rep.unique_prompts, rep.cached, rep.calls, rep.unparseable, rep.failed) == (4, 0, 4, 2, 0)
    assert any("[1, 2] or rather [3, 4]" in e for e in rep.examples)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert len(mock_server.requests) == 4  # the repeated prompt was asked once
    req = mock_server.requests[0]
    assert req.body["temperature"] == 0 and req.body["max_tokens"] == 512
    assert req.messages[0]["role"] == "system" and req.messages[0]["content"].startswith("Your task is to evaluate how well")
    assert out.steps[-1].name == "tag:hard_prompt" and "2 unparseable" in out.steps[-1].detail
    # second run: every answer from the SQLite file, the server sees no new request
    out2, reports2 = run_taggers(table, ["hard_prompt"], client=model, cache=str(cache_path))
    assert len(mock_server.requests) == 4
    assert (reports2[0].cached, reports2[0].calls, reports2[0].unparseable) == (4, 0, 2)
    assert out2.frame["category_hard_6"].equals(f["category_hard_6"])
    assert len(TagCache(cache_path)) == 4


def test_llm_if_math_creative_refusal(mock_server) -> None:
    table = _battles(["P-HARD", "P-EASY", "P-TWOLISTS", "P-OTHER"])
    out, reps = run_taggers(table, ["if"], client=mock_server.model_config("if-labeler"))
    assert out.frame["if_score"].tolist()[:2] == [5, 2]
    assert out.frame["category_if"].tolist()[:2] == [True, False]
    assert out.frame["category_if"].isna().tolist() == [False, False, True, True]  # two scores / "Score: 4"
    assert reps[0].unparseable == 2
    assert mock_server.requests[-1].messages[1]["content"].startswith("<user_prompt>")

    yes = mock_server.model_config("yesno")
    out, reps = run_taggers(table, ["math", "creative_writing"], client=yes)
    # "<decision>\n[no]\n</decision>": FastChat's creative_writing parser strips the brackets,
    # its math parser does not (so \w+ does not match): unparseable for math, "no" for creative
    assert out.frame["category_creative_writing"].tolist()[:2] == [True, False]
    assert out.frame["category_creative_writing"].isna().tolist() == [False, False, True, True]  # "maybe"
    assert out.frame["category_math"].isna().tolist() == [False, True, True, True]
    assert bool(out.frame["category_math"].iloc[0])
    assert [r.unparseable for r in reps] == [3, 2]

    out, reps = run_taggers(table, ["refusal"], client=mock_server.model_config("refuser"))
    assert out.frame["category_no_refusal"].tolist() == [False, True, True, True]
    body = mock_server.requests[-1].messages[1]["content"]
    assert "<model_B_response>\nanswer B to" in body  # response B is B's (FastChat sent A twice)


def test_llm_failures_are_counted_not_cached(mock_server) -> None:
    from openarena.providers import RetryPolicy

    table = _battles(["P-HARD", "P-EASY"])
    cache = TagCache()
    out, reps = run_taggers(table, ["math"], client=mock_server.model_config("down"), cache=cache, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0))
    assert reps[0].failed == 2 and out.frame["category_math"].isna().all() and len(cache) == 0
    assert "503" in reps[0].errors[0]
    assert len(mock_server.requests_for("down")) == 4  # two attempts per prompt


def test_llm_with_a_plain_function_and_bounded_concurrency() -> None:
    import asyncio

    calls: list[str] = []
    in_flight = [0, 0]

    async def labeler(messages):
        calls.append(messages[1]["content"])
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return "<decision>yes</decision>" if "7" in messages[1]["content"] else "<decision>no</decision>"

    table = _battles([f"question {i}" for i in range(10)])
    out = tag_battles(table, ["math"], client=labeler, concurrency=3)
    assert out.frame["category_math"].tolist() == [i == 7 for i in range(10)]
    assert len(calls) == 10 and in_flight[1] == 3


def test_tagger_errors() -> None:
    table = _battles(["x"])
    with pytest.raises(DataError, match="unknown tagger"):
        tag_battles(table, ["nonsense"])
    with pytest.raises(DataError, match="needs an LLM endpoint"):
        tag_battles(table, ["hard_prompt"])
    with pytest.raises(DataError, match="both write"):
        tag_battles(table, ["math_rule", "math"], client=lambda m: "")
    with pytest.raises(DataError, match="needs column"):
        tag_battles(BattleTable(table.frame.drop(columns=["conversation_a", "conversation_b"])), ["coding"])
    assert set(LLM_TAGGERS) == {"hard_prompt", "if", "math", "creative_writing", "refusal"}

"""LLM category taggers against a mock OpenAI-compatible server on loopback (moved from
tests/data/test_categories.py with the taggers), and their answers in the response cache that
the judges use too."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.judging.taggers import LLM_TAGGERS, run_taggers, tag_battles
from openarena.providers import ResponseCache


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
    # second run: every answer from the response cache's SQLite file, the server sees no new request
    out2, reports2 = run_taggers(table, ["hard_prompt"], client=model, cache=str(cache_path))
    assert len(mock_server.requests) == 4
    assert (reports2[0].cached, reports2[0].calls, reports2[0].unparseable) == (4, 0, 2)
    assert out2.frame["category_hard_6"].equals(f["category_hard_6"])
    with ResponseCache(cache_path) as cache:
        assert len(cache) == 4


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


def test_llm_failures_are_counted_not_cached(mock_server, tmp_path) -> None:
    from openarena.providers import RetryPolicy

    table = _battles(["P-HARD", "P-EASY"])
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        out, reps = run_taggers(table, ["math"], client=mock_server.model_config("down"), cache=cache, retry=RetryPolicy(max_attempts=2, base_delay_s=0.0))
        assert (reps[0].failed, reps[0].calls, reps[0].cached) == (2, 2, 0) and out.frame["category_math"].isna().all() and len(cache) == 0
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
    with ResponseCache(":memory:") as cache, pytest.raises(DataError, match="response cache needs a labeler endpoint"):
        tag_battles(table, ["math"], client=lambda m: "", cache=cache)
    with pytest.raises(DataError, match="needs column"):
        tag_battles(BattleTable(table.frame.drop(columns=["conversation_a", "conversation_b"])), ["coding"])
    assert set(LLM_TAGGERS) == {"hard_prompt", "if", "math", "creative_writing", "refusal"}


def test_tagger_key_is_the_request_prompt_and_model_not_the_version(mock_server, tmp_path, monkeypatch) -> None:
    """The taggers' key is every call's key (endpoint + request body): a changed prompt or
    labeler model asks again; a version bump with the same prompt does not (the answer is
    parsed at read time)."""
    table = _battles(["P-HARD", "P-EASY"])
    labeler, other = mock_server.model_config("yesno"), mock_server.model_config("labeler")
    math = LLM_TAGGERS["math"]
    msgs = math.messages({"PROMPT": "P-HARD"})
    overrides = {"temperature": 0.0, "max_tokens": math.max_tokens}
    changed = [{**msgs[0], "content": msgs[0]["content"] + " Be brief."}, msgs[1]]
    key = ResponseCache.key(labeler, msgs, **overrides)
    assert ResponseCache.key(labeler, changed, **overrides) != key
    assert ResponseCache.key(other, msgs, **overrides) != key
    cache_path = tmp_path / "c.sqlite"

    def calls(tagger, client) -> tuple[int, int]:
        monkeypatch.setitem(LLM_TAGGERS, "math", tagger)
        n = len(mock_server.requests)
        _, reps = run_taggers(table, ["math"], client=client, cache=cache_path)
        assert len(mock_server.requests) - n == reps[0].calls
        return reps[0].cached, reps[0].calls

    assert calls(math, labeler) == (0, 2)
    assert calls(math, labeler) == (2, 0)
    assert calls(dataclasses.replace(math, version="math_v9"), labeler) == (2, 0)
    assert calls(dataclasses.replace(math, system_prompt=math.system_prompt + " Be brief."), labeler) == (0, 2)
    assert calls(math, other) == (0, 2)
    with ResponseCache(cache_path) as cache:
        assert len(cache) == 6


def test_tagger_and_judge_answers_share_one_cache_file(tmp_path: Path) -> None:
    """`openarena tag` and `openarena judge run` writing to one folder keep their answers in the
    same .openarena-cache.sqlite; run again (outputs deleted), they send no request at all."""
    from typer.testing import CliRunner

    from openarena.cli.main import app
    from openarena.demo.mock_server import Behaviour, MockServer
    from openarena.judging.answers import generate_answers
    from openarena.providers.cache import CACHE_FILE_NAME
    from tests.judging.test_pipeline import QS, answerer, judge_fn

    runner = CliRunner()
    models = {m: Behaviour.from_function(answerer(m)) for m in ("alpha", "base")}
    models |= {"judge": Behaviour.from_function(judge_fn), "labeler": Behaviour.by_rules({r"P-HARD": "<decision>yes</decision>"}, default="<decision>no</decision>")}
    with MockServer(models) as srv:
        reg = tmp_path / "models.yaml"
        reg.write_text("models:\n" + "".join(f"  - name: {m}\n    base_url: {srv.base_url}\n" for m in models))
        qfile = tmp_path / "q.jsonl"
        qfile.write_text("".join(json.dumps({"uid": q.uid, "category": q.category, "prompt": q.prompt}) + "\n" for q in QS))
        answers = tmp_path / "answers"
        for m in ("alpha", "base"):
            generate_answers(srv.model_config(m), QS, answers)
        battles = tmp_path / "battles.jsonl"
        _battles(["P-HARD", "P-EASY", "P-OTHER"]).frame.to_json(battles, orient="records", lines=True)
        out = tmp_path / "out"
        judged, tagged = out / "judge.jsonl", out / "tagged.parquet"
        judge = ["judge", "run", "-r", str(reg), "-j", "judge", "-m", "alpha", "-b", str(qfile), "-a", str(answers), "-o", str(judged), "--baseline", "base", "-q"]
        tag = ["tag", str(battles), "-o", str(tagged), "--taggers", "math", "--registry", str(reg), "--model", "labeler", "-q"]

        def run_both() -> tuple[int, int, str]:
            """Both commands from scratch (no output to resume from); the requests so far per model."""
            judged.unlink(missing_ok=True)
            tagged.unlink(missing_ok=True)
            r1, r2 = runner.invoke(app, judge), runner.invoke(app, tag)
            assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
            return len(srv.requests_for("judge")), len(srv.requests_for("labeler")), r2.stderr

        n0 = len(srv.requests)
        judge_calls, tag_calls, summary = run_both()
        assert (judge_calls, tag_calls) == (13, 3)  # 12 games + alpha/q1's continuation; 3 prompts
        assert "3 unique prompts, 0 cached, 3 calls" in summary
        assert len(srv.requests) - n0 == 16
        with sqlite3.connect(out / CACHE_FILE_NAME) as db:
            assert dict(db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model").fetchall()) == {"judge": 13, "labeler": 3}
        n1 = len(srv.requests)
        assert run_both()[:2] == (13, 3) and len(srv.requests) == n1  # no request at all
        assert pd.read_parquet(tagged)["category_math"].tolist() == [True, False, False]
        r = runner.invoke(app, tag + ["--no-cache"])  # past the cache: asked again, nothing kept
        assert r.exit_code == 0 and "0 cached, 3 calls" in r.stderr and len(srv.requests_for("labeler")) == 6

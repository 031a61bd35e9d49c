"""Reports: the Arena-Hard judge battles through the ratings engine (library and CLI), style
control with length and markdown density, per-category tables, MT-Bench averages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.data.battles import BattleTable
from openarena.data.readers import read_battles
from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.quality import read_bootstrap_stats, separability
from openarena.judging.questions import load_questions
from openarena.judging.report import add_style_features, detect_baseline, mt_bench_summary, pairwise_report, win_rate_from_ratings
from openarena.judging.single import load_single_judgments
from tests.conftest import DATA, shared_file

BATTLES = "arena_hard_auto/data/arena_hard_battles.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def battles() -> BattleTable:
    return read_battles(shared_file(BATTLES))


def test_arena_hard_battles_report(battles: BattleTable) -> None:
    """1,348 judge battles (100 questions, claude-3-haiku vs three models, "much better" already
    repeated 3 times in the file): the baseline is found, and with a single baseline the BT win
    rate equals each model's raw win rate (ties as half)."""
    assert len(battles) == 1348
    assert detect_baseline(battles) == "claude-3-haiku-20240307"
    res = pairwise_report(battles, rounds=100, seed=0)
    t = res.table.set_index("model")
    f = battles.frame
    for m in ("gpt-4o", "claude-3-5-sonnet-20240620", "claude-3-opus-20240229"):
        w = f.loc[f["model_b"] == m, "winner"]
        raw = 100 * ((w == "model_b").sum() + 0.5 * (w == "tie").sum()) / len(w)
        assert t.loc[m, "score"] == pytest.approx(raw, abs=1e-6)
    assert t["score"].round(2).to_dict() == {"gpt-4o": 91.03, "claude-3-5-sonnet-20240620": 90.87,
                                             "claude-3-opus-20240229": 82.26, "claude-3-haiku-20240307": 50.0}
    assert list(t.index[:3]) == ["gpt-4o", "claude-3-5-sonnet-20240620", "claude-3-opus-20240229"]
    assert t.loc["gpt-4o", "battles"] == 468 and res.level == 0.9
    assert t.loc["gpt-4o", "lower"] < 91.03 < t.loc["gpt-4o", "upper"]
    # 90% intervals are narrower than 95% ones from the same bootstrap
    wide = pairwise_report(battles, rounds=100, seed=0, level=0.95).table.set_index("model")
    assert (wide["upper"] - wide["lower"]).loc["gpt-4o"] > (t["upper"] - t["lower"]).loc["gpt-4o"]
    assert win_rate_from_ratings(np.array([1400.0]), 1000.0)[0] == pytest.approx(1 / (1 + 10 ** (-1)))
    # the bootstrap win rates feed the benchmark-quality metrics
    st = res.bootstrap_stats("haiku-baseline")
    assert st.models[0] == "gpt-4o" and len(st.samples[0]) == 100 and np.allclose(st.samples[-1], 50.0)
    assert separability(st).pairs == 6 and separability(st).separated == 5  # gpt-4o ~ sonnet overlap


def test_cli_leaderboard_and_judge_show_on_the_battles(tmp_path) -> None:
    path = str(shared_file(BATTLES))
    lb = runner.invoke(app, ["leaderboard", path, "--format", "csv"])
    assert lb.exit_code == 0, lb.output
    rows = pd.read_csv(pd.io.common.StringIO(lb.output))
    assert rows["model"].tolist()[:3] == ["gpt-4o", "claude-3-5-sonnet-20240620", "claude-3-opus-20240229"]
    assert rows.set_index("model")["num_battles"].to_dict()["claude-3-haiku-20240307"] == 1348
    stats = Path(tmp_path) / "stats.jsonl"
    show = runner.invoke(app, ["judge", "show", path, "-q", "--stats-out", str(stats)])
    assert read_bootstrap_stats(stats).models[:2] == ("gpt-4o", "claude-3-5-sonnet-20240620")
    assert show.exit_code == 0, show.output
    assert "90% bootstrap CI" in show.output and "claude-3-haiku-20240307" in show.output and "91.0" in show.output
    js = runner.invoke(app, ["judge", "show", path, "-q", "-f", "json", "--level", "0.95"])
    doc = json.loads(js.output)
    assert doc["baseline"] == "claude-3-haiku-20240307" and doc["level"] == 0.95
    assert [r["model"] for r in doc["leaderboard"]][0] == "gpt-4o"
    bad = runner.invoke(app, ["judge", "show", path, "-q", "--baseline", "nobody"])
    assert bad.exit_code == 2 and "baseline 'nobody' is not in the battles" in bad.output


def _answer(model: str, uid: str, tokens: int, lists: int = 0) -> Answer:
    meta = {"token_len": tokens, "header_count": {"h1": 0}, "list_count": {"ordered": 0, "unordered": lists},
            "bold_count": {"**": 0, "__": 0}}
    return Answer(uid, model, ("x",), meta)


def test_style_control_removes_a_pure_length_preference() -> None:
    """A judge that prefers longer answers and nothing else: 'verbose' (long answers) beats
    'concise' (short ones) without control; with length control the two are level (the
    covariates are centred over all battles, as Arena-Hard v2 does, so the controlled scores
    are relative to the average length difference), and the length coefficient is positive
    (Arena-Hard v2's feature (t_a - t_b) / (t_a + t_b), with model_a = the baseline)."""
    rng = np.random.default_rng(1)
    rows, answers = [], {"base": {}, "verbose": {}, "concise": {}}
    for i in range(300):
        uid = f"q{i}"
        tb = 300
        answers["base"][uid] = _answer("base", uid, tb)
        for model, lo, hi in (("verbose", 300, 1200), ("concise", 80, 400)):
            tm = int(rng.integers(lo, hi))
            answers[model][uid] = _answer(model, uid, tm, lists=int(rng.integers(0, 5)))
            x = (tb - tm) / (tb + tm)
            p_a = 1 / (1 + np.exp(-5 * x))
            rows.append({"question_id": uid, "model_a": "base", "model_b": model,
                         "winner": "model_a" if rng.random() < p_a else "model_b", "category": "c"})
    b = BattleTable(pd.DataFrame(rows), "synthetic")
    styled = add_style_features(b, answers)
    f = styled.frame
    assert f.loc[0, "length_ratio"] == pytest.approx((f.loc[0, "tokens_a"] - f.loc[0, "tokens_b"]) / (f.loc[0, "tokens_a"] + f.loc[0, "tokens_b"]))
    assert f.loc[0, "list_density_b"] == pytest.approx(f.loc[0, "lists_b"] / f.loc[0, "tokens_b"])
    res = pairwise_report(b, rounds=40, answers=answers, control="length")
    raw = res.table.set_index("model")["score"]
    ctl = res.controlled.set_index("model")["score"]
    assert raw["verbose"] - raw["concise"] > 25
    assert abs(ctl["verbose"] - ctl["concise"]) < 8
    coef = res.coefficients.set_index("name").loc["length_ratio"]
    assert coef["coef"] > 0 and coef["coef_q025"] > 0  # a longer model_a (the baseline) wins more often
    with pytest.warns(UserWarning, match="no variance"):  # no headers or bold in these answers
        both = pairwise_report(b, rounds=20, answers=answers, control="style")
    assert list(both.coefficients["name"]) == ["length_ratio", "list_density"]
    with pytest.raises(DataError, match="needs the answers"):
        pairwise_report(b, rounds=5, control="length")


def test_mt_bench_summary_on_real_gradings() -> None:
    """RouteLLM's 320 GPT-4 gradings (80 questions x 2 turns x 2 models). Mixtral's mean, 8.340625,
    is the MT-Bench score of mixtral in the Arena-Hard notebook's bootstrap_stats_mt_bench.jsonl."""
    recs = load_single_judgments(shared_file("routellm/routellm/evals/mt_bench/judgements.jsonl"))
    qs = load_questions("mt-bench", local_root=DATA)
    s = mt_bench_summary(recs, qs, rounds=200, level=0.95)
    o = s.overall.set_index("model")
    assert o.loc["mistralai/Mixtral-8x7B-Instruct-v0.1", "score"] == pytest.approx(8.340625)
    assert o.loc["gpt-4-1106-preview", "score"] == pytest.approx(9.228125)
    assert o.loc["gpt-4-1106-preview", "turn_1"] == pytest.approx(9.40625) and o.loc["gpt-4-1106-preview", "turn_2"] == pytest.approx(9.05)
    assert (o["n"] == 160).all() and (o["unparseable"] == 0).all()
    assert o.loc["gpt-4-1106-preview", "lower"] < 9.228125 < o.loc["gpt-4-1106-preview", "upper"]
    assert s.by_category.loc["gpt-4-1106-preview", "math"] == pytest.approx(7.95)
    assert s.by_category.shape == (2, 8)
    stats = [json.loads(x) for x in shared_file("arena_hard_auto/notebook/bootstrap_stats_mt_bench.jsonl").read_text().splitlines()]
    assert next(r["score"] for r in stats if r["model"] == "mixtral-8x7b-instruct-v0.1") == pytest.approx(8.340625)

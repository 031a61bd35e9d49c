"""Routers and the router benchmark: APGR/CPT against hand-computed curves, the random floor and
the oracle ceiling, learned routers recovering a planted difficulty signal, the RouteLLM files
read with their contamination lists, threshold calibration, and CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.errors import DataError
from openarena.routing.data import PromptScores, preference_labels, read_prompt_scores
from openarena.routing.evaluate import evaluate_router
from openarena.routing.routers import ROUTERS, P2LRouter, calibrate_threshold, make_router, strong_call_fraction
from tests.conftest import shared_file

import pandas as pd


def test_apgr_and_cpt_by_hand():
    """4 prompts, the strong model better on exactly two of them, the router ranks them first:
    PGR reaches 1 at 50% strong calls; APGR on the decile grid = 0.75 exactly."""
    qs = np.array([1.0, 1.0, 1.0, 0.0])
    qw = np.array([0.0, 0.0, 1.0, 0.0])
    r = evaluate_router("x", np.array([4.0, 3.0, 2.0, 1.0]), qs, qw, rounds=10)
    np.testing.assert_allclose(r.pgr, [0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1, 1, 1], atol=1e-12)
    assert r.apgr == pytest.approx(0.75)
    assert r.cpt50 == pytest.approx(0.25) and r.cpt80 == pytest.approx(0.40)
    # reversed order: the gain comes last
    worst = evaluate_router("y", -np.array([4.0, 3.0, 2.0, 1.0]), qs, qw, rounds=10)
    assert worst.apgr == pytest.approx(0.25)
    # ties share their gain: equal scores are a random router in expectation
    flat = evaluate_router("z", np.zeros(4), qs, qw, rounds=10)
    np.testing.assert_allclose(flat.pgr, np.linspace(0, 1, 11), atol=1e-12)


def test_random_floor_oracle_ceiling_and_intervals():
    rng = np.random.default_rng(0)
    qw = (rng.random(3000) < 0.6).astype(float)
    qs = np.maximum(qw, (rng.random(3000) < 0.5).astype(float))
    rand = evaluate_router("random", np.zeros(3000), qs, qw, rounds=300, random=True)
    assert abs(rand.apgr - 0.5) < 0.01 and rand.apgr_lower < 0.5 < rand.apgr_upper
    oracle = evaluate_router("oracle", qs - qw, qs, qw, rounds=300)
    assert oracle.apgr > 0.8 and oracle.apgr_lower <= oracle.apgr <= oracle.apgr_upper


def _planted(n=600, seed=0):
    """Prompts about 'quantum tensor calculus' need the strong model; 'cooking recipes' do not."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    words = ["quantum tensor calculus proof", "simple pancake recipe for two"]  # equal lengths
    prompts = [f"Question {k}: explain the {words[0] if h else words[1]} number {rng.integers(1000)}" for k, h in enumerate(hard)]
    qw = np.where(hard, rng.random(n) < 0.2, rng.random(n) < 0.8).astype(float)
    qs = np.where(hard, rng.random(n) < 0.9, rng.random(n) < 0.85).astype(float)
    return PromptScores(prompts, pd.DataFrame({"strong": qs, "weak": qw}), "planted")


@pytest.mark.parametrize("name", ["classifier", "sw_ranking", "mf", "p2l", "difficulty"])
def test_learned_routers_find_a_planted_signal(name):
    from openarena.routing.benchmark import route_eval

    data = _planted(300)  # small: the routing tests stay fast on a busy 2-core machine
    bench = route_eval(name, data, strong="strong", weak="weak", folds=2, rounds=100)
    r, rand = bench.results[name], bench.results["random"]
    if name == "difficulty":  # sees no topic: no better than random on this data
        assert abs(r.apgr - 0.5) < 0.12
    else:
        assert r.apgr > 0.75 and r.apgr_lower > rand.apgr_upper, (r.apgr, rand.apgr_upper)


def test_p2l_routes_multi_model_under_a_budget():
    prompts = [f"math problem {i}" for i in range(60)] + [f"poem about {i}" for i in range(60)]
    a, b, y = [], [], []
    for p in prompts:  # big wins math, poet wins poems, cheap loses to both
        math = p.startswith("math")
        a += ["big", "poet", "big"]; b += ["poet", "cheap", "cheap"]
        y += [1.0 if math else 0.0, 1.0, 1.0]
    r = P2LRouter(l2=0.01).fit_pairs([p for p in prompts for _ in range(3)], a, b, y)
    assert r.route(["math problem 999", "poem about 999"]) == ["big", "poet"]
    assert r.route(["math problem 999"], prices={"big": 10, "poet": 3, "cheap": 0.5}, budget=5) == ["poet"]
    with pytest.raises(DataError, match="budget"):
        r.route(["x"], prices={"big": 10}, budget=1)


def test_calibration_hits_the_wanted_fraction_on_new_traffic():
    rng = np.random.default_rng(1)
    sample, traffic = rng.normal(size=2000), rng.normal(size=20000)
    t = calibrate_threshold(sample, 0.3)
    assert abs(strong_call_fraction(sample, t) - 0.3) < 0.001
    assert abs(strong_call_fraction(traffic, t) - 0.3) < 0.02
    with pytest.raises(DataError):
        calibrate_threshold(sample, 1.5)


def test_routellm_files_are_read_with_their_contamination_lists():
    mmlu = read_prompt_scores(shared_file("routellm/routellm/evals/mmlu/responses"))
    assert len(mmlu) == 14042 - 5 and mmlu.dropped == {"contaminated": 5}
    gsm = read_prompt_scores(shared_file("routellm/routellm/evals/gsm8k/gsm8k_responses.csv"))
    assert len(gsm) + gsm.dropped["contaminated"] == 1319
    mt = read_prompt_scores(shared_file("routellm/routellm/evals/mt_bench/judgements.jsonl"))
    assert len(mt) == 72 and mt.kind == "grade"
    p, qs, qw = mt.pair("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert qs.mean() > qw.mean()
    grades = read_prompt_scores(shared_file("arena_hard_auto/data/arena-bench-v1/model_judgment"))
    assert len(grades) == 300 and len(grades.models) >= 15
    assert set(preference_labels(np.array([1, 0, 1.0]), np.array([0, 1, 1.0]))) == {1.0, 0.0, 0.5}


def test_cli_json_keys_and_errors(tmp_path):
    src = tmp_path / "c.csv"
    data = _planted(300)
    pd.DataFrame({"prompt": data.prompts, "strong": data.scores["strong"].astype(bool), "weak": data.scores["weak"].astype(bool)}).to_csv(src, index=False)
    r = CliRunner().invoke(app, ["route", "eval", "--router", "length", "--train", str(src), "--format", "json", "--rounds", "50", "--folds", "3"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {"router", "apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt80", "n_test"} <= set(doc)
    assert doc["n_test"] == 300 and set(doc["baselines"]) == {"random", "oracle"}
    bad = CliRunner().invoke(app, ["route", "eval", "--router", "mf", "--train", str(tmp_path / "none.csv")])
    assert bad.exit_code == 2 and "no such file" in bad.output
    wrong = CliRunner().invoke(app, ["route", "eval", "--router", "length", "--train", str(src), "--strong", "gpt-9", "--weak", "weak"])
    assert wrong.exit_code == 2 and "gpt-9" in wrong.output
    assert set(ROUTERS) == {"random", "length", "difficulty", "sw_ranking", "mf", "classifier", "p2l"}
    assert make_router("random") is not None


def test_unreadable_or_tiny_training_data_is_one_line(tmp_path):
    """Hostile review: a binary file and a 2-row file ended in tracebacks."""
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text('prompt,s,w\n"a",True,False\n"b",False,True\n')
    for path, words in ((binary, "not a readable CSV"), (tiny, "2 prompts scored")):
        r = CliRunner().invoke(app, ["route", "eval", "--router", "mf", "--train", str(path), "--strong", "s", "--weak", "w"])
        assert r.exit_code == 2 and words in r.output, r.output

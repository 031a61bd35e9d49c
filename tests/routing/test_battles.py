"""Arena battles with prompts as router training data: real clean_battle records, the 55k and
140k formats, the arena's own database (SQLite through the storage API); RouteLLM's tiers
against a brute-force search; tie rules; the multi-model similarity-weighted Bradley-Terry
against the package's own Bradley-Terry fit; and the sw_ranking defect (below random on small
sets) reproduced and fixed on a simulation whose truth is known."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import openarena
from openarena.cli.main import app
from openarena.errors import DataError
from openarena.routing.battles import (ArenaBattles, arena_battles, battle_ratings, looks_like_battles, model_tiers, read_ratings,
                                       tier_pair)
from openarena.routing.benchmark import route_eval, within_fold_quantiles
from openarena.routing.data import PromptScores
from openarena.routing.evaluate import evaluate_router
from openarena.routing.routers import SWRankingRouter, _bt_pair_probability
from tests.conftest import shared_file

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures"
LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"


def test_real_clean_battle_records_give_first_turn_prompts():
    path = shared_file(LABELED)
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    b = arena_battles(openarena.read(str(path)))
    first = [r["conversation_a"][0]["content"].strip() for r in rows]  # read independently
    kept = [p for p in first if len(p) >= 16]
    assert b.prompts == kept and len(b) == 94 and b.dropped == {"no prompt": 0, "short prompt": 6}
    assert list(b.winner) == [r["winner"] for r, p in zip(rows, first) if len(p) >= 16]
    assert looks_like_battles(str(path)) and not looks_like_battles(str(shared_file("routellm/routellm/evals/gsm8k/gsm8k_responses.csv")))


def test_55k_and_140k_formats():
    b55 = arena_battles(openarena.read(str(FIXTURES / "arena_55k_sample.csv")))
    assert b55.prompts[0] == "Explain topic 0 in one sentence, please." and list(b55.winner[:3]) == ["model_a", "model_b", "tie"]
    assert looks_like_battles(str(FIXTURES / "arena_55k_sample.csv")) and looks_like_battles(str(FIXTURES / "arena_140k_sample.parquet"))
    t140 = openarena.read(str(FIXTURES / "arena_140k_sample.parquet"))  # content = list of text parts
    b140 = arena_battles(t140, min_chars=1)
    assert b140.prompts[0] == "task 0" and len(b140) == len(t140)
    with pytest.raises(DataError, match="16\\+ characters"):
        arena_battles(t140)  # 'task 0' is shorter than RouteLLM's 16 characters
    with pytest.raises(DataError, match="no prompts"):
        arena_battles(openarena.read(str(shared_file("arena_catalog/topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv"))))


def _brute_tiers(x: list[float], k: int) -> float:
    best = np.inf
    for cuts in itertools.combinations(range(1, len(x)), k - 1):
        parts = np.split(np.array(x), cuts)
        best = min(best, sum(np.var(p) for p in parts))
    return best


def test_tiers_minimise_within_tier_variance_like_routellm():
    rng = np.random.default_rng(3)
    ratings = {f"m{i}": float(v) for i, v in enumerate(rng.normal(1100, 80, 9))}
    for k in (2, 3, 4):
        tiers = model_tiers(ratings, k)
        x = sorted(ratings.values(), reverse=True)
        got = sum(np.var([ratings[m] for m in tiers if tiers[m] == t]) for t in range(k))
        assert got == pytest.approx(_brute_tiers(x, k), abs=1e-9)
        best = max(ratings, key=ratings.get)
        assert tiers[best] == 0 and set(tiers.values()) == set(range(k))
    # published arena scores: gpt-4-1106-preview sits in a higher tier than Mixtral
    pub = read_ratings(shared_file("thurstone_models/results/tables/published_bt_20240813.csv"))
    t = model_tiers(pub, 10)
    assert t["gpt-4-1106-preview"] < t["mixtral-8x7b-instruct-v0.1"] and t[max(pub, key=pub.get)] == 0


def _battles(rows) -> ArenaBattles:
    p, a, b, w = zip(*rows)
    return ArenaBattles(list(p), np.array(a), np.array(b), np.array(w), "hand")


def test_tie_rules_follow_routellm():
    b = _battles([("p1", "S", "W", "model_a"), ("p2", "W", "S", "model_a"), ("p3", "S", "W", "tie"),
                  ("p4", "W", "S", "tie (bothbad)"), ("p5", "S", "X", "model_a")])
    prompts, y = b.pair_labels(["S"], ["W"], "half")
    assert prompts == ["p1", "p2", "p3", "p4"] and list(y) == [1, 0, 0.5, 0.5]
    assert list(b.pair_labels(["S"], ["W"], "weak")[1]) == [1, 0, 0, 0]
    assert b.pair_labels(["S"], ["W"], "drop") == (["p1", "p2"], pytest.approx([1, 0]))
    with pytest.raises(DataError, match="no battle between"):
        b.pair_labels(["X"], ["W"])
    P, A, B, Y = b.group_pairs({"S": "t0", "W": "t1"})  # X has no tier: left out
    assert P == ["p1", "p2", "p3", "p4"] and A == ["t0", "t1", "t0", "t1"] and list(Y) == [1, 1, 0.5, 0.5]


def test_weighted_bradley_terry_matches_the_package_fit():
    """The multi-group sw_ranking fit of one prompt = the package's Bradley-Terry MLE on the
    same (weighted) votes."""
    from openarena.ratings.bradley_terry import fit_bradley_terry

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(400):
        a, b = rng.choice(["g0", "g1", "g2", "g3"], 2, replace=False)
        rows.append((a, b, rng.choice(["model_a", "model_b", "tie"], p=[0.5, 0.3, 0.2])))
    frame = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    fit = fit_bradley_terry(openarena.BattleTable(frame), ties="half")
    th = dict(zip(fit.counts.models, fit.theta))
    G = ["g0", "g1", "g2", "g3"]
    wins = np.zeros((1, 4, 4))
    for a, b, w in rows:
        s = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[w]
        wins[0, G.index(a), G.index(b)] += s
        wins[0, G.index(b), G.index(a)] += 1 - s
    p = _bt_pair_probability(wins, 0, 3, prior=0.0)[0]
    assert p == pytest.approx(1 / (1 + np.exp(th["g3"] - th["g0"])), abs=1e-6)


def _two_kinds(n: int, seed: int) -> PromptScores:
    """Prompts of two kinds, equal lengths: on 'integral' prompts the strong model is right far
    more often than the weak one; on 'recipe' prompts both are equally good."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.5
    prompts = [f"Q{k}: " + ("evaluate this definite integral of x" if h else "suggest a quick recipe with tomato") + f" #{rng.integers(100)}"
               for k, h in enumerate(hard)]
    qs = np.where(hard, rng.random(n) < 0.9, rng.random(n) < 0.7).astype(float)
    qw = np.where(hard, rng.random(n) < 0.2, rng.random(n) < 0.7).astype(float)
    return PromptScores(prompts, pd.DataFrame({"strong": qs, "weak": qw}), "two kinds")


class _TrainingMean:
    """A router that knows nothing but its training labels' mean (what the old sw_ranking was
    on small sets: its prior outweighed neighbours of weight exp(-10))."""

    name = "mean"

    def fit(self, prompts, labels):
        self.m = float(np.mean(labels))
        return self

    def score(self, prompts):
        return np.full(len(prompts), self.m)


def test_pooled_fold_scores_leaked_the_training_mean():
    """The cause of sw_ranking's APGR 0.43-0.48: k-fold scores pooled raw carry each fold's
    training mean, which is anti-correlated with the fold's test labels. Within-fold quantiles
    make such a router exactly random."""
    data = _two_kinds(80, 1)
    prompts, qs, qw = data.pair("strong", "weak")
    fold = np.random.default_rng(0).permutation(np.arange(80) % 5)
    raw, fixed = np.empty(80), np.empty(80)
    for k in range(5):
        tr = fold != k
        y = np.where(qs[tr] > qw[tr], 1.0, np.where(qs[tr] < qw[tr], 0.0, 0.5))
        s = _TrainingMean().fit(None, y).score(np.flatnonzero(~tr))
        raw[~tr], fixed[~tr] = s, within_fold_quantiles(s)
    bad = evaluate_router("mean", raw, qs, qw, rounds=200)
    good = evaluate_router("mean", fixed, qs, qw, rounds=200)
    assert bad.apgr < 0.45  # below random with nothing learned
    assert good.apgr == pytest.approx(0.5, abs=1e-9)


def test_sw_ranking_beats_random_on_a_small_simulated_set():
    """80 prompts (MT-Bench has 72), 5 folds: the whole interval of sw_ranking lies above random
    (its expectation 0.5 and its estimate here); the oracle is near 1."""
    data = _two_kinds(80, 1)
    bench = route_eval("sw_ranking", data, strong="strong", weak="weak", folds=5, rounds=300)
    r, rand = bench.results["sw_ranking"], bench.results["random"]
    assert r.apgr_lower > max(0.5, rand.apgr) and r.apgr > 0.8, (r.apgr, r.apgr_lower, rand.apgr)


def _sim_battles(n: int, seed: int) -> ArenaBattles:
    """Arena battles among six models in three strengths: top models beat bottom ones on
    integrals and tie with them on recipes; middle models are in between."""
    rng = np.random.default_rng(seed)
    models = {"top1": 2, "top2": 2, "mid1": 1, "mid2": 1, "low1": 0, "low2": 0}
    rows = []
    for k in range(n):
        hard = rng.random() < 0.5
        p = f"B{k}: " + ("evaluate this definite integral of x" if hard else "suggest a quick recipe with tomato") + f" #{rng.integers(100)}"
        a, b = rng.choice(list(models), 2, replace=False)
        gap = (models[a] - models[b]) * (1.5 if hard else 0.05)
        u = rng.random()
        pa = 1 / (1 + np.exp(-gap))
        w = "tie" if rng.random() < 0.2 else ("model_a" if u < pa else "model_b")
        rows.append((p, a, b, w))
    return _battles(rows)


@pytest.mark.parametrize("name", ["sw_ranking", "classifier", "p2l"])
def test_routers_trained_on_arena_battles_route_held_out_prompts(name):
    battles = _sim_battles(600, 2)
    pair = tier_pair(battles, strong_models=["top1", "top2"], weak_models=["low1", "low2"])
    assert pair.strong_models == ["top1", "top2"] and pair.weak_models == ["low1", "low2"]
    test = _two_kinds(200, 5)
    bench = route_eval(name, battles, test, strong="strong", weak="weak", pair=pair, rounds=200)
    r, rand = bench.results[name], bench.results["random"]
    assert r.apgr_lower > rand.apgr_upper, (r.apgr, r.apgr_lower, rand.apgr_upper)
    assert "arena" in bench.dropped
    # tiers from the battles' own Bradley-Terry scores put the top models above the low ones
    auto = tier_pair(battles, n_tiers=3, strong_tier=0, weak_tier=2)
    scores = battle_ratings(battles)
    assert min(scores["top1"], scores["top2"]) > max(scores["low1"], scores["low2"])
    assert {"top1", "top2"} & set(auto.strong_models) and {"low1", "low2"} & set(auto.weak_models)


def test_battles_without_test_data_are_refused():
    with pytest.raises(DataError, match="no per-prompt quality"):
        route_eval("classifier", _sim_battles(50, 0))


def _arena_db(url: str, battles: ArenaBattles) -> None:
    from openarena.storage import Database
    from openarena.storage.battles import acquire_turn, create_battle, finish_turn
    from openarena.storage.votes import record_vote

    db = Database.open(url)
    try:
        for i, (p, a, b, w) in enumerate(zip(battles.prompts, battles.model_a, battles.model_b, battles.winner)):
            sess = f"s{i}"
            bid = create_battle(db, mode="anony", model_a=str(a), model_b=str(b), session_hash=sess, sampling_policy="uniform", sampling_prob=0.1)
            assert acquire_turn(db, bid, sess) is not None
            finish_turn(db, bid, conversation_a=[{"role": "user", "content": p}, {"role": "assistant", "content": "x"}],
                        conversation_b=[{"role": "user", "content": p}, {"role": "assistant", "content": "y"}], turns=1)
            record_vote(db, bid, sess, str(w))
    finally:
        db.dispose()


def test_the_arena_database_trains_and_evaluates_a_router(tmp_path):
    battles = _sim_battles(240, 4)
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    _arena_db(url, battles)
    back = arena_battles(openarena.read(url))
    assert sorted(back.prompts) == sorted(battles.prompts) and len(back) == 240
    test = _two_kinds(120, 6)
    csv = tmp_path / "test.csv"
    pd.DataFrame({"prompt": test.prompts, "strong": test.scores["strong"].astype(bool), "weak": test.scores["weak"].astype(bool)}).to_csv(csv, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["route", "eval", "--router", "sw_ranking", "--train", url, "--test", str(csv), "--strong-models", "top1,top2",
                            "--weak-models", "low1,low2", "--format", "json", "--rounds", "100"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["n_test"] == 120 and doc["apgr"] > doc["baselines"]["random"]["apgr_upper"]
    out = tmp_path / "r.npz"
    r = runner.invoke(app, ["route", "train", "--router", "classifier", "--train", url, "--strong-models", "top1,top2", "--weak-models", "low1,low2", "-o", str(out)])
    assert r.exit_code == 0 and out.exists(), r.output
    from openarena.routing.persist import load_router

    router, meta = load_router(out)
    assert meta["trained_on"]["strong_models"] == ["top1", "top2"]
    s = router.score(["Q: evaluate this definite integral of x #1", "Q: suggest a quick recipe with tomato #1"])
    assert s[0] > s[1]
    # sw_ranking over tiers and p2l over every model survive a save/load
    for name in ("sw_ranking", "p2l"):
        r = runner.invoke(app, ["route", "train", "--router", name, "--train", url, "-o", str(tmp_path / f"{name}.npz")]
                          + (["--strong-models", "top1,top2", "--weak-models", "low1,low2"] if name == "sw_ranking" else []))
        assert r.exit_code == 0, r.output
        loaded, meta = load_router(tmp_path / f"{name}.npz")
        if name == "p2l":
            assert set(loaded.models_) == set(battles.models)
        else:
            s = loaded.score(["Q: evaluate this definite integral of x #1", "Q: suggest a quick recipe with tomato #1"])
            assert s[0] > s[1]
    # calibrate trains a named router on battles as `route train` does (was: per-prompt scores only)
    r = runner.invoke(app, ["route", "train", "--router", "classifier", "--train", url, "-o", str(tmp_path / "default.npz")])
    assert r.exit_code == 0, r.output
    cal = [runner.invoke(app, ["route", "calibrate", "--router", router, "--sample", str(csv), "--strong-fraction", "0.3", "--format", "json"] + extra)
           for router, extra in ((str(tmp_path / "default.npz"), []), ("classifier", ["--train", url]))]
    assert all(c.exit_code == 0 for c in cal), [c.output for c in cal]
    saved, named = (json.loads(c.stdout) for c in cal)
    assert named["threshold"] == pytest.approx(saved["threshold"], rel=1e-6)  # the same router (the saved one read back from its .npz) and named["sample_prompts"] == 120
    assert abs(named["sample_fraction"] - 0.3) <= 1 / 120
    r = runner.invoke(app, ["route", "calibrate", "--router", str(tmp_path / "default.npz"), "--sample", str(csv), "--strong-fraction", "0.3", "--format", "csv"])
    table = pd.read_csv(__import__("io").StringIO(r.stdout))  # --format csv was ignored (a sentence was printed)
    assert r.exit_code == 0 and len(table) == 1 and table["threshold"][0] == pytest.approx(saved["threshold"], rel=1e-9)
    bad = runner.invoke(app, ["route", "eval", "--router", "mf", "--train", url, "--test", str(csv), "--strong-models", "nobody", "--weak-models", "low1"])
    assert bad.exit_code == 2 and "nobody" in bad.output


def test_cli_names_battles_it_cannot_use(tmp_path):
    """Pair counts carry no prompts; a ties rule outside half/drop/weak; too few strong-vs-weak
    battles: one line each, exit 2."""
    runner = CliRunner()
    csv = tmp_path / "test.csv"
    test = _two_kinds(60, 6)
    pd.DataFrame({"prompt": test.prompts, "strong": test.scores["strong"].astype(bool), "weak": test.scores["weak"].astype(bool)}).to_csv(csv, index=False)
    counts = shared_file("leaderbot/chatbotarena_20240814.json")
    r = runner.invoke(app, ["route", "eval", "--router", "classifier", "--train", str(csv), "--arena", str(counts)])
    assert r.exit_code == 2 and "carry no prompts" in r.output, r.output
    r = runner.invoke(app, ["route", "eval", "--router", "classifier", "--train", str(csv), "--ties", "maybe"])
    assert r.exit_code == 2 and "--ties maybe" in r.output
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(json.dumps({"model_a": a, "model_b": b, "winner": "model_a",
                                         "conversation_a": [{"role": "user", "content": f"a long enough prompt number {i}"}]})
                             for i, (a, b) in enumerate([("top1", "low1")] * 3 + [("mid1", "low1")] * 20)) + "\n")
    r = runner.invoke(app, ["route", "eval", "--router", "classifier", "--train", str(few), "--test", str(csv),
                            "--strong-models", "top1", "--weak-models", "low1"])
    assert r.exit_code == 2 and "3 battles between the strong side" in r.output, r.output


def test_calibrate_on_battles_names_the_strong_side_not_none(tmp_path):
    # a router trained on battles by the default tiers has no strong model name: the table
    # said "sends 30.0% of 120 sample prompts to None"
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    _arena_db(url, _sim_battles(240, 4))
    test = _two_kinds(120, 6)
    sample = tmp_path / "sample.txt"
    sample.write_text("\n".join(test.prompts) + "\n")
    r = CliRunner().invoke(app, ["route", "calibrate", "--router", "classifier", "--train", url, "--sample", str(sample),
                                 "--strong-fraction", "0.3", "--traffic", str(sample)])
    assert r.exit_code == 0, r.output
    assert "None" not in r.stdout
    assert "sends 30.0% of 120 sample prompts to the strong side" in " ".join(r.stdout.split())


def test_calibrate_refuses_a_router_file_with_training_data(tmp_path):
    # --train was ignored without a word when --router named a trained .npz file
    sample = tmp_path / "sample.txt"
    sample.write_text("one prompt\n")
    (tmp_path / "r.npz").write_bytes(b"")
    r = CliRunner().invoke(app, ["route", "calibrate", "--router", str(tmp_path / "r.npz"), "--train", str(sample), "--sample", str(sample),
                                 "--strong-fraction", "0.3"])
    assert r.exit_code == 2 and "--train" in r.output and "trained router file" in r.output, r.output

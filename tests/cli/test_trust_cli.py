"""The trust commands end to end on real and simulated votes: rank intervals on the leaderboard,
variants, drift, history, frontier, price control, audit, providers, snapshot / verify, and
one-line errors with exit 2 for bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.ratings.simulate import simulate_battles
from tests.conftest import shared_file

runner = CliRunner()
TEN_K = "arena_catalog/topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_leaderboard_rank_intervals_on_real_votes(tmp_path):
    out = tmp_path / "lb.csv"
    r = run("leaderboard", shared_file(TEN_K), "--rank-intervals", "--format", "csv", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert list(t.columns[:8]) == ["rank_ub", "model", "rating", "rating_q025", "rating_q975", "num_battles", "rank_lower", "rank_upper"]
    assert (t.rank_lower <= t.rank_upper).all() and t.rank_lower.min() == 1 and t.rank_upper.max() == len(t)
    r = run("leaderboard", shared_file(TEN_K), "--rank-intervals", "--rank-method", "tukey", "-q")
    assert r.exit_code == 2 and "--rank-method" in r.output


def test_variants_csv_and_summary(tmp_path):
    src = shared_file(TEN_K)
    out = tmp_path / "v.csv"
    r = run("trust", "variants", src, "--variants", "gpt-4o-2024-05-13,gpt-4-turbo-2024-04-09,gpt-4-0125-preview", "--format", "csv", "-o", out)
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert list(t.columns) == ["model", "rating", "rating_q025", "rating_q975", "adj_lower", "adj_upper", "selected"]
    assert t.selected.sum() == 1 and t.loc[t.selected, "model"].item() == t.loc[t.rating.idxmax(), "model"]
    assert ((t.adj_upper - t.adj_lower) > (t.rating_q975 - t.rating_q025)).all()
    assert "selection bias" in r.output and "provisional" in r.output
    r = run("trust", "variants", src, "--variants", "gpt-4o-2024-05-13,nope")
    assert r.exit_code == 2 and "nope" in r.output and "Traceback" not in r.output


def test_drift_csv_and_plot(tmp_path):
    theta = np.linspace(-0.5, 0.5, 6)
    f1 = simulate_battles(theta, 4000, seed=1).frame
    t2 = theta.copy()
    t2[2] += 0.4
    f2 = simulate_battles(t2, 4000, seed=2).frame
    f1["tstamp"] = 1.7e9 + np.arange(4000)
    f2["tstamp"] = 1.7e9 + 10 * 86400 + np.arange(4000)
    src = tmp_path / "votes.csv"
    pd.concat([f1, f2]).to_csv(src, index=False)
    out, png = tmp_path / "drift.csv", tmp_path / "drift.png"
    r = run("trust", "drift", src, "--window", "7d", "--format", "csv", "-o", out, "--plot", png, "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert list(t.columns[:6]) == ["model", "delta", "se", "p_value", "p_adjusted", "drifted"]
    assert t.loc[t.drifted, "model"].tolist() == ["m02"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    r = run("trust", "drift", shared_file(TEN_K))
    assert r.exit_code == 2 and "tstamp" in r.output


def test_history_of_the_published_board():
    r = run("trust", "history", shared_file("fboulnois_llm_leaderboard_csv/lmsys"), "--format", "csv")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert len(t) > 0 and (t.z.abs() > 3).all()


def test_frontier_formats(tmp_path):
    d = shared_file("arena_catalog/data")
    for fmt in ("csv", "html", "png"):
        out = tmp_path / f"frontier.{fmt}"
        r = run("trust", "frontier", d / "leaderboard-text.json", "--prices", d / "scatterplot-data.json", "--format", fmt, "-o", out, "-q")
        assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "frontier.csv")
    assert list(t.columns[:4]) == ["model", "rating", "price", "on_frontier"]
    assert "possibly on the frontier" in set(t.status)
    assert "plotly" in (tmp_path / "frontier.html").read_text()[:5_000_000].lower()
    r = run("trust", "frontier", d / "leaderboard-text.json", "--prices", d / "scatterplot-data.json", "--price-weights", "x")
    assert r.exit_code == 2 and "--price-weights" in r.output


def test_audit_and_providers(tmp_path):
    out = tmp_path / "audit.html"
    r = run("trust", "audit", shared_file(TEN_K), "-o", out, "--json", tmp_path / "a.json", "-q")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "a.json").read_text())["summary"]
    assert s["components"] == 1 and s["tie_rate"] == pytest.approx(0.18)
    assert "<img" in out.read_text()
    r = run("trust", "providers", shared_file(TEN_K), "--orgs", shared_file("arena_catalog"), "--format", "csv", "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert t.battles.max() <= 10_000 and t.appearance_share.sum() == pytest.approx(1.0)


def test_snapshot_verify_and_tampering(tmp_path):
    src = tmp_path / "votes.csv"
    shutil.copy(shared_file(TEN_K), src)
    snap = tmp_path / "snap"
    r = run("snapshot", src, "-o", snap, "--min-battles", "100", "-q")
    assert r.exit_code == 0, r.output
    m = json.loads((snap / "manifest.json").read_text())
    assert len(m["source_sha256"]) == 64 and m["read_options"]["min_battles"] == 100
    assert run("verify", snap).exit_code == 0
    # change one vote: the hash and the ratings differ, exit 1 naming them
    frame = pd.read_csv(src)
    frame.loc[0, "winner"] = "model_b" if frame.loc[0, "winner"] != "model_b" else "model_a"
    frame.to_csv(src, index=False)
    r = run("verify", snap)
    assert r.exit_code == 1
    assert "votes changed" in r.output and frame.loc[0, "model_a"] in r.output
    r = run("verify", tmp_path)
    assert r.exit_code == 2 and "manifest.json" in r.output


def test_weighted_price_control_and_frontier_history(tmp_path):
    src = shared_file(TEN_K)
    r = run("trust", "weighted", src, "--weighting", "arena-rank", "--format", "csv", "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert {"rating", "rating_q025", "rating_q975", "rating_unweighted", "shift"} <= set(t.columns)
    assert (t.rating_q025 <= t.rating).all() and (t.rating_q025 < t.rating).sum() == len(t) - 1  # the anchor is fixed
    assert t["shift"].abs().max() > 0
    r = run("trust", "weighted", src, "--weighting", "ipw")
    assert r.exit_code == 2 and "sampling_prob" in r.output
    d = shared_file("arena_catalog/data")
    r = run("trust", "price-control", src, "--prices", d / "scatterplot-data.json", "--prices", d / "pricing_table.csv", "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["coefficient"][0]["name"] == "log_price" and doc["coefficient"][0]["coef"] > 0
    rows = doc.get("rows") or doc.get("models") or next(v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict) and "rank_controlled" in v[0])
    ranks = [r["rank_controlled"] for r in rows]
    assert ranks == sorted(ranks)  # rows in the order of their ranks
    out = tmp_path / "fh.csv"
    r = run("trust", "frontier-history", shared_file("jasontrigg0_chatbot_arena_history/alltime.csv"), "--prices", d / "pricing_table.csv", "-o", out, "--plot", tmp_path / "fh.png", "-q")
    assert r.exit_code == 0, r.output
    fh = pd.read_csv(out)
    assert fh.date.nunique() > 50
    best = fh.groupby("date").rating.max()
    assert best.iloc[-1] > best.iloc[0] + 200  # the frontier rises over two years


def test_control_for_a_per_model_column(tmp_path):
    vals = tmp_path / "params.csv"
    vals.write_text("model,params_b\nllama-3-70b-instruct,70\nllama-3-8b-instruct,8\nmixtral-8x7b-instruct-v0.1,47\ngemma-2-9b-it,9\ngemma-2-27b-it,27\nqwen2-72b-instruct,72\nphi-3-mini-4k-instruct,3.8\n")
    r = run("trust", "control", shared_file(TEN_K), "--values", vals, "--column", "params_b", "--log", "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["coefficient"][0]["name"] == "log10_params_b" and len(doc["rows"]) == 7
    vals.write_text("model,params_b\nllama-3-70b-instruct,big\n")
    r = run("trust", "control", shared_file(TEN_K), "--values", vals, "--column", "params_b")
    assert r.exit_code == 2 and "params.csv: row 1, field 'params_b'" in r.output


def test_registry_prices_and_organisations(tmp_path):
    """A model registry YAML serves as a price table, an organisation map and a sampling target."""
    from pathlib import Path

    reg = Path(__file__).resolve().parents[2] / "examples" / "models.yaml"
    lb = tmp_path / "lb.json"
    assert run("leaderboard", shared_file(TEN_K), "--format", "json", "-o", lb, "-q").exit_code == 0
    r = run("trust", "frontier", lb, "--prices", reg, "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert set(t.model) == {"gpt-4o-2024-05-13", "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20240620", "mistral-large-2407"}
    assert t.set_index("model").loc["gpt-4o-mini-2024-07-18", "price"] == pytest.approx((3 * 0.15 + 0.60) / 4)
    r = run("trust", "providers", shared_file(TEN_K), "--orgs", reg, "--format", "csv", "-q")
    assert r.exit_code == 0, r.output
    assert "OpenAI" in r.stdout and "(unknown)" in r.stdout

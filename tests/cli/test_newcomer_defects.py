"""Defects found when the tool was tried as a newcomer would (issue 9): each test failed before
its fix."""

from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.ratings.simulate import simulate_battles

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _small_tagged(tmp_path: Path) -> Path:
    """300 votes between 4 models (about 150 each), half tagged coding: every model is under the
    default display threshold of 300 votes."""
    f = simulate_battles(np.array([0.0, 0.5, -0.5, 1.0]), 300, seed=1).frame[["model_a", "model_b", "winner"]].copy()
    f["category_coding"] = np.arange(len(f)) % 2 == 0
    path = tmp_path / "small.csv"
    f.to_csv(path, index=False)
    return path


def test_a_category_where_every_model_is_under_the_threshold_says_so(tmp_path):
    src = _small_tagged(tmp_path)
    r = run("leaderboard", src, "--category", "coding", "-q")
    assert r.exit_code == 2 and "--min-votes-shown" in r.stderr and "at most 300 votes" in r.stderr
    r = run("leaderboard", src, "--category", "coding", "--min-votes-shown", 0, "--format", "csv", "-q")
    assert r.exit_code == 0 and len(pd.read_csv(pd.io.common.StringIO(r.stdout))) == 4
    assert "rank_delta" in r.stdout.splitlines()[0]


def test_categories_summary_never_prints_nan_or_an_empty_leader(tmp_path):
    r = run("leaderboard", _small_tagged(tmp_path), "--categories", "all")
    assert r.exit_code == 0, r.output
    assert "nan" not in r.stdout.lower() and "(none: every" in r.stdout
    assert "use --min-votes-shown 0" in r.stderr


def test_by_summary_leader_has_enough_votes(tmp_path):
    f = simulate_battles(np.array([0.0, 0.3, -0.3]), 1600, seed=2).frame[["model_a", "model_b", "winner"]].copy()
    f["topic"] = np.where(np.arange(len(f)) % 2 == 0, "t1", "t2")
    lucky = pd.DataFrame({"model_a": ["lucky"] * 5, "model_b": ["m00", "m01", "m02", "m00", "m01"],
                          "winner": ["model_a"] * 4 + ["model_b"], "topic": "t1"})
    path = tmp_path / "by.csv"
    pd.concat([f, lucky], ignore_index=True).to_csv(path, index=False)
    r = run("leaderboard", path, "--by", "topic")
    assert r.exit_code == 0, r.output
    assert "lucky" not in r.stdout  # 5 votes: hidden as on the boards (more than 300 needed)
    r = run("leaderboard", path, "--by", "topic", "--min-votes-shown", 0, "--format", "csv", "-q")
    assert "lucky" in r.stdout


def test_curate_threshold_must_be_a_similarity(tmp_path):
    r = run("curate", ROOT / "tests" / "fixtures" / "clean_battle_sample.json", "-o", tmp_path / "x.parquet", "--threshold", 5)
    assert r.exit_code == 2 and "threshold" in r.output.lower()
    assert not (tmp_path / "x.parquet").exists()


def test_example_registry_does_not_use_the_arenas_own_port(monkeypatch):
    from openarena.cli.serve import serve
    from openarena.providers.registry import load_registry

    port = inspect.signature(serve).parameters["port"].default.default
    for var in ("VLLM_BASE_URL", "OLLAMA_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    reg = load_registry(ROOT / "examples" / "models.yaml")
    hosts = [urlparse(m.base_url) for m in reg.models()]
    local = [u for u in hosts if u.hostname in ("127.0.0.1", "localhost")]
    assert local and all(u.port != port for u in local), [u.geturl() for u in local]


def test_tag_and_leaderboard_categories_count_no_refusal_alike(tmp_path):
    from openarena import api
    from tests.conftest import shared_file

    src = shared_file("fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl")
    out = tmp_path / "tagged.parquet"
    r = run("tag", src, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    tagged = pd.read_parquet(out)
    board_view = api.prepare(api.load(str(src)), categories=True).frame
    assert int(tagged["category_no_refusal"].fillna(False).sum()) == int(board_view["category_no_refusal"].fillna(False).sum()) == 88
    assert "kept the file's own labels" in r.stderr and "no_refusal" in r.stderr
    # --retag: our rule tagger instead of the file's LLM labels (it finds 6 refusals fewer)
    r = run("tag", src, "-o", out, "-q", "--retag", "--taggers", "no_refusal")
    assert r.exit_code == 0, r.output
    assert int(pd.read_parquet(out)["category_no_refusal"].fillna(False).sum()) == 94


def test_a_note_is_printed_once_however_many_boards_raise_it():
    """``--control style --categories all`` fits one board per category; a covariate without
    variance was noted once per board (8 times 'headers' on this file), now once per run. Runs
    the real executable, whose warning hook turns library warnings into note lines."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "openarena", "leaderboard", str(ROOT / "tests" / "fixtures" / "clean_battle_sample.json"),
           "--control", "style", "--categories", "all", "-q", "--min-votes-shown", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: covariate")]
    assert len(notes) >= 2 and len(notes) == len(set(notes)), notes
    assert "note: covariate 'headers' has no variance in these battles and is left out" in notes


def test_style_control_with_a_prior_on_a_singular_category_says_so_without_a_traceback():
    """With --prior the strengths are regularised but a covariate left constant in a category is
    not: the fit converged and the sandwich's inverse then raised numpy's LinAlgError (a
    traceback, exit 1). Now: the not-identified message, exit 2; --categories all skips that board."""
    src = ROOT / "tests" / "fixtures" / "clean_battle_sample.json"
    r = run("leaderboard", src, "--prior", "0.01", "--control", "style", "--category", "no_tie", "--min-votes-shown", 0)
    assert r.exit_code == 2, r.output
    assert "information matrix is singular" in r.stderr and "Traceback" not in r.output
    # its 9 battles: the three style covariates predict every outcome (the fit runs off to infinity)
    assert "predict every outcome" in " ".join(r.stderr.split()), r.stderr
    r = run("leaderboard", src, "--prior", "0.01", "--control", "style", "--categories", "all", "--min-votes-shown", 0)
    assert r.exit_code == 0 and "full" in r.stdout, r.output


def test_voters_counts_as_tested_only_voters_that_reach_the_first_look():
    """Every voter's last vote is also a look of the sequential test, so 'looks_tested > 0' held
    for everyone: 5 voters with 2 votes each were '5 tested (at least 5 votes)'."""
    r = run("voters", ROOT / "tests" / "fixtures" / "clean_battle_sample.json", "--no-shift")
    assert r.exit_code == 0, r.output
    assert "5 voters, 0 tested (at least 5 votes)" in " ".join(r.stdout.split())


def test_tables_printed_to_a_pipe_do_not_wrap_model_names():
    """Piped (no terminal), rich assumed 80 columns and cut 'gemini-1.5-pro-api-0409-preview'
    across two lines of the real board; a pipe now gets 160 columns (COLUMNS still wins)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "openarena", "leaderboard", "chatbot-arena-20240814"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "gemini-1.5-pro-api-0409-preview" in r.stdout

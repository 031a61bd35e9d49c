"""``openarena sampling simulate`` end to end: JSON keys, --compare on the same seeds,
--new-model, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from tests.conftest import shared_file

runner = CliRunner()
PUBLISHED = "thurstone_models/results/tables/published_bt_20240813.csv"


def run(*args):
    return runner.invoke(app, ["sampling", "simulate", *[str(a) for a in args]])


def one_error(res, *words):
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output, res.output
    for w in words:
        assert w in lines[0], (w, res.output)


@pytest.fixture
def strengths(tmp_path):
    # ten published models from the 2024-08-13 board with the widest spread: a realistic arena
    pub = pd.read_csv(shared_file(PUBLISHED))
    sub = pub.iloc[[0, 10, 25, 40, 55, 70, 85, 100, 115, 127]][["model", "rating"]]
    path = tmp_path / "strengths.csv"
    sub.to_csv(path, index=False)
    return path, list(sub["model"])


def test_json_and_compare(strengths):
    path, models = strengths
    r = run("--strengths", path, "--policy", "targeted", "--target-halfwidth", 40, "--seeds", 3, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {"policy", "votes_to_target", "max_halfwidth", "median_halfwidth"} <= set(doc)
    assert doc["policy"] == "targeted" and doc["max_halfwidth"] < 40 and doc["votes_to_target"] > 0
    r = run("--strengths", path, "--compare", "--target-halfwidth", 40, "--seeds", 3, "--format", "json")
    assert r.exit_code == 0, r.output
    rows = {d["policy"]: d for d in json.loads(r.stdout)}
    assert set(rows) == {"fastchat", "uniform", "active", "targeted"}
    assert rows["targeted"] == doc  # same seeds, same simulation
    # a 700-point spread: targeted spends fewer votes than uniform on the widest interval
    assert rows["targeted"]["votes_to_target"] < rows["uniform"]["votes_to_target"]
    r = run("--strengths", path, "--compare", "--target-halfwidth", 40, "--seeds", 2)
    assert r.exit_code == 0 and "targeted" in r.stdout and "uniform" in r.stdout and "votes" in r.stdout


def test_new_model(strengths):
    path, models = strengths
    r = run("--strengths", path, "--policy", "targeted", "--new-model", models[3], "--history", 20000, "--target-halfwidth", 30, "--seeds", 2, "-f", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["criterion"] == f"model {models[3]}" and doc["votes_to_target"] > 0


def test_bad_input_is_one_line_and_exit_2(strengths, tmp_path):
    path, _ = strengths
    one_error(run("--strengths", tmp_path / "missing.csv"), "missing.csv")
    one_error(run("--strengths", path, "--policy", "best"), "best", "targeted")
    one_error(run("--strengths", path, "--target-halfwidth", -3), "target-halfwidth")
    one_error(run("--strengths", path, "--new-model", "nobody"), "nobody")
    bad = tmp_path / "bad.csv"
    bad.write_text("model,rating\na,1100\nb,NaN\n")
    one_error(run("--strengths", bad), "bad.csv", "row 2", "rating")
    bad.write_text("name,elo\na,1\nb,2\n")
    one_error(run("--strengths", bad), "bad.csv", "model")


def test_absurd_strengths_are_refused(tmp_path):
    """Hostile review: an 8,000-point spread ended in a LinAlgError traceback (or ran for
    minutes), and a vote_target of 'x' was read as empty."""
    from typer.testing import CliRunner

    from openarena.cli.main import app

    wide = tmp_path / "wide.csv"
    wide.write_text("model,rating\na,1000\nb,1000\nc,9000\n")
    r = CliRunner().invoke(app, ["sampling", "simulate", "--strengths", str(wide), "--policy", "uniform"])
    assert r.exit_code == 2 and "8,000 points apart" in r.output and "row 3" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("model,rating,vote_target\na,1000,x\nb,1100,\n")
    r = CliRunner().invoke(app, ["sampling", "simulate", "--strengths", str(bad), "--policy", "uniform"])
    assert r.exit_code == 2 and "vote_target" in r.output

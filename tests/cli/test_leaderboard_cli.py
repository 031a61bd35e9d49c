"""The leaderboard command end to end: formats, files, categories, style control, and one-line
errors with exit code 2 for bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from tests.conftest import shared_file

runner = CliRunner()
TEN_K = "arena_catalog/topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv"
LABELED = "fastchat/fastchat/serve/monitor/classify/refusal_test/labeled.jsonl"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_csv_starts_with_the_documented_columns(tmp_path):
    src = shared_file(TEN_K)
    out = tmp_path / "lb.csv"
    r = run("leaderboard", src, "--format", "csv", "-o", out, "-q")
    assert r.exit_code == 0, r.output
    header = out.read_text().splitlines()[0]
    assert header.startswith("rank_ub,model,rating,rating_q025,rating_q975,num_battles")
    t = pd.read_csv(out)
    assert len(t) == 55 and t["num_battles"].sum() == 20_000
    # mixtral-8x7b-instruct-v0.1 is in these votes: the LMSYS anchor applies
    assert t.set_index("model").loc["mixtral-8x7b-instruct-v0.1", "rating"] == pytest.approx(1114)


def test_json_markdown_html_and_out_dir(tmp_path):
    src = shared_file(TEN_K)
    r = run("leaderboard", src, "--format", "json", "-q", "--anchor", "mean")
    doc = json.loads(r.stdout)
    assert doc["provenance"]["options"]["anchor"] == "mean = 1000"
    assert abs(sum(row["rating"] for row in doc["leaderboard"]) / 55 - 1000) < 1e-6
    md = run("leaderboard", src, "--format", "markdown", "-q").stdout
    assert md.startswith("| Rank (UB) | Model | Arena Score | 95% CI | Votes |")
    r = run("leaderboard", src, "--out-dir", tmp_path, "-q", "--top", "3")
    assert r.exit_code == 0
    for name in ("leaderboard.csv", "leaderboard.json", "leaderboard.html", "leaderboard_ci.png"):
        assert (tmp_path / name).stat().st_size > 100
    assert (tmp_path / "leaderboard_ci.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_leaderboard_per_topic_category(tmp_path):
    src = shared_file(TEN_K)
    r = run("leaderboard", src, "--by", "broad_category", "--out-dir", tmp_path, "-q")
    assert r.exit_code == 0, r.output
    dirs = sorted(p.name for p in tmp_path.iterdir())
    assert len(dirs) == 11 and "full" in dirs and "math_puzzles" in dirs
    shown = pd.read_csv(tmp_path / "math_puzzles" / "shown.csv")
    assert "rank_delta" in shown.columns
    prov = json.loads((tmp_path / "math_puzzles" / "leaderboard.json").read_text())["provenance"]
    assert prov["n_battles"] == 1383  # 1,384 Math Puzzles votes minus one unrated model's
    assert any(f["name"] == "unrated" and "snowflake-arctic-instruct" in f["detail"] for f in prov["filters"])


def test_style_control_from_conversations(tmp_path):
    src = shared_file(LABELED)
    out = tmp_path / "sc"
    r = run("leaderboard", src, "--control", "style", "--drop-unrated", "--out-dir", out, "-q")
    assert r.exit_code == 0, r.output
    coef = pd.read_csv(out / "leaderboard_coefficients.csv")
    assert coef["name"].tolist() == ["tokens", "headers", "lists", "bold"]
    assert "Style / covariate coefficients" in r.stdout


@pytest.mark.parametrize(
    "content,needle",
    [
        ("model_a,model_b,winner\na,b,model_a\na,b,draw\n", "row 2, field 'winner': unknown winner label 'draw'"),
        ("model_a,model_b,winner\na,a,model_a\n", "row 1, field 'model_b': model 'a' battles itself"),
        ("model_a,winner\na,model_a\n", "field 'model_b'"),
        ("", "empty"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, content, needle):
    f = tmp_path / "votes.csv"
    f.write_text(content)
    r = run("leaderboard", f)
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.startswith("error:") and "votes.csv" in err and needle in err
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--alias", "nonsense"], "expected OLD=NEW"),
        (["--anchor", "no-such-model=1200"], "anchor model 'no-such-model' is not in the data"),
        (["--rating", "elo", "--ci", "sandwich"], "sandwich intervals need the Bradley-Terry likelihood"),
        (["--control", "length"], "field 'conversation_a'"),
    ],
)
def test_bad_options_exit_2(args, needle):
    r = run("leaderboard", shared_file(TEN_K), "-q", *args)
    assert r.exit_code == 2, r.output
    assert needle in " ".join(r.stderr.split())


def test_missing_file_exit_2(tmp_path):
    r = run("leaderboard", tmp_path / "nope.json")
    assert r.exit_code == 2
    assert "nope.json" in r.stderr


def test_non_finite_anchor_and_negative_seed_are_refused():
    src = shared_file(TEN_K)
    r = run("leaderboard", src, "-q", "--anchor", "mixtral-8x7b-instruct-v0.1=nan")
    assert r.exit_code == 2 and "not a finite number" in r.stderr
    r = run("leaderboard", src, "-q", "--ci", "bootstrap", "--seed", "-1")
    assert r.exit_code == 2


def test_unwritable_output_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("leaderboard", shared_file(TEN_K), "-q", "--out-dir", blocker / "sub")
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "Traceback" not in r.output


def test_topic_boards_as_one_long_csv(tmp_path):
    out = tmp_path / "by.csv"
    r = run("leaderboard", shared_file(TEN_K), "--by", "broad_category", "--format", "csv", "--min-votes-shown", 0, "-o", out, "-q")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert t.columns[0] == "category" and set(t["category"]) >= {"full", "Math Puzzles"}
    assert t.groupby("category").size()["full"] == 55


def test_model_keys_are_trimmed_and_millisecond_times_read(tmp_path):
    f = tmp_path / "votes.csv"
    # two votes on 2024-06-01 and one on 2024-06-10, times in milliseconds
    f.write_text("model_a,model_b,winner,tstamp\n m5,m6,model_a,1717200000000\nm5 ,m6,model_b,1717200001000\nm5,m6,tie,1717977600000\n")
    r = run("leaderboard", f, "--format", "csv", "--since", "2024-06-05", "-q", "--ci", "none")
    assert r.exit_code == 0, r.output
    t = pd.read_csv(__import__("io").StringIO(r.stdout))
    assert sorted(t["model"]) == ["m5", "m6"] and t["num_battles"].tolist() == [1, 1]


@pytest.mark.parametrize("argv,needle", [(["leaderboard", "x.csv", "--seed", "-1"], "'--seed'"), (["leaderboard"], "Missing argument"), (["bogus"], "No such command")])
def test_usage_errors_of_the_executable_are_one_line_exit_2(capsys, argv, needle):
    from openarena.cli.main import run as main_run

    with pytest.raises(SystemExit) as info:
        main_run(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err


def test_filters_that_leave_no_model_are_a_clear_error(tmp_path):
    f = tmp_path / "votes.csv"
    f.write_text("model_a,model_b,winner\na,b,model_a\nb,c,tie\n")
    r = run("leaderboard", f, "--min-battles", "50", "--drop-unrated")
    assert r.exit_code == 2 and "0 model(s) left to rate after the filters" in " ".join(r.stderr.split())

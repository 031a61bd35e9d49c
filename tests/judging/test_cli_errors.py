"""Bad input to `openarena judge ...` is one line ``error: ...`` (or typer's own range message
for integer options) with exit status 2, never a traceback, and is found before any slow work
(the question sets on the hub, the bootstrap, the model calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.judging.report import mt_bench_summary
from openarena.judging.single import load_single_judgments

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, ["judge", *map(str, args)])


def one_line_error(r, needle: str) -> str:
    """Exit 2, no traceback, and stderr is the single line ``error: ...`` holding ``needle``."""
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert needle in lines[0], lines[0]
    return lines[0]


def usage_error(r, option: str) -> None:
    """typer's range check of an integer option: exit 2, the option named, no traceback."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "Invalid value" in r.output and option in r.output


@pytest.fixture()
def pairwise(tmp_path: Path) -> Path:
    """Our judgment records: two models against `base`, both orders, wins and losses."""
    f = tmp_path / "j3.jsonl"
    rows = []
    for m, wins in (("alpha", 5), ("beta", 3)):
        for i in range(8):
            label = "B>A" if i < wins else "A>B"  # game 1: model is B
            for game, lab in ((1, label), (2, {"B>A": "A>B", "A>B": "B>A"}[label])):
                rows.append({"uid": f"q{i}", "category": "c", "model": m, "baseline": "base", "game": game,
                             "label": lab, "status": "ok", "judge": {"model": "j"}})
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


@pytest.fixture()
def single(tmp_path: Path) -> Path:
    """MT-Bench single grades; alpha's first grade is 11 on the 1-10 scale."""
    f = tmp_path / "single.jsonl"
    rows = [{"question_id": f"q{i}", "model": m, "turn": t, "score": 11 if (m, i, t) == ("alpha", 0, 1) else 5 + i,
             "judge": ["gpt-4", "single-v1"]}
            for m in ("alpha", "beta") for i in range(4) for t in (1, 2)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


@pytest.fixture()
def registry(tmp_path: Path) -> Path:
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  - name: m1\n    base_url: http://127.0.0.1:9/v1\n")
    return reg


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a question set or touching the hub fails the test: bad options must be caught first."""

    def boom(*a, **k):
        raise AssertionError("questions loaded before the options were checked")

    monkeypatch.setattr("openarena.judging.questions.load_questions", boom)
    monkeypatch.setattr("openarena.judging.questions.hub_download", boom)


# 1. the bootstrap seed is a non-negative integer


@pytest.mark.parametrize("which", ["pairwise", "single"])
def test_show_negative_seed(which: str, request: pytest.FixtureRequest) -> None:
    usage_error(invoke("show", request.getfixturevalue(which), "-q", "--seed", "-1"), "--seed")


# 2. the interval level is strictly between 0 and 1


@pytest.mark.parametrize("which", ["pairwise", "single"])
@pytest.mark.parametrize("level", ["2", "0", "1", "-0.5", "nan"])
def test_show_level_outside_0_1(which: str, level: str, request: pytest.FixtureRequest) -> None:
    r = invoke("show", request.getfixturevalue(which), "-q", "--level", level)
    one_line_error(r, "--level")
    assert "strictly between 0 and 1" in r.stderr and "0% CI" not in r.output and "0% bootstrap" not in r.output


def test_show_rounds_capped(pairwise: Path) -> None:
    usage_error(invoke("show", pairwise, "-q", "--rounds", "10001"), "--rounds")


def test_level_checked_by_the_library_too(single: Path) -> None:
    from openarena.errors import OpenArenaError

    recs = load_single_judgments(single)
    with pytest.raises(OpenArenaError, match="strictly between 0 and 1"):
        mt_bench_summary(recs, rounds=10, level=0)
    with pytest.raises(OpenArenaError, match="non-negative"):
        mt_bench_summary(recs, rounds=10, seed=-1)


# 3. a single grade outside 1-10 is invalid (status out_of_range), as the rating parser says


def test_single_grade_out_of_range_is_counted_invalid(single: Path) -> None:
    recs = load_single_judgments(single)
    bad = [r for r in recs if r["status"] == "out_of_range"]
    assert len(bad) == 1 and bad[0]["score"] is None and bad[0]["model"] == "alpha"
    assert "rating 11 is outside 1..10" in bad[0]["reason"] and "row 1, field 'score'" in bad[0]["reason"]
    s = mt_bench_summary(recs).overall.set_index("model")
    assert s.loc["alpha", "unparseable"] == 1 and s.loc["alpha", "n"] == 7
    assert s.loc["alpha", "score"] == pytest.approx((5 + 2 * 6 + 2 * 7 + 2 * 8) / 7)  # the 11 is left out
    r = invoke("show", single, "-f", "json", "--rounds", "5")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    alpha = next(x for x in doc["overall"] if x["model"] == "alpha")
    assert alpha["unparseable"] == 1 and alpha["turn_1"] == pytest.approx(7.0)  # (6 + 7 + 8) / 3 without the 11
    assert "1 grading(s) outside the 1-10 scale" in r.stderr and str(single) in r.stderr and "row 1" in r.stderr


@pytest.mark.parametrize("score,status", [(0, "out_of_range"), (10.5, "out_of_range"), (-1, "missing"), (10, "ok"), (1, "ok")])
def test_single_grade_bounds(tmp_path: Path, score: float, status: str) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"question_id": 1, "model": "m", "turn": 1, "score": score}) + "\n")
    assert load_single_judgments(f)[0]["status"] == status


def test_malformed_judgment_records(tmp_path: Path) -> None:
    f = tmp_path / "turn.jsonl"
    f.write_text(json.dumps({"question_id": 1, "model": "m", "turn": "x", "score": 5}) + "\n")
    one_line_error(invoke("show", f), "row 1, field 'turn'")
    g = tmp_path / "games.jsonl"
    g.write_text(json.dumps({"question_id": 1, "model": "m", "games": "A>B"}) + "\n")
    one_line_error(invoke("show", g, "--baseline", "b"), "row 1, field 'games'")
    h = tmp_path / "nomodel.jsonl"
    h.write_text(json.dumps({"question_id": 1, "games": [{"score": "A>B"}]}) + "\n")
    one_line_error(invoke("audit", h, "--baseline", "b"), "field 'model'")


# 4. the registry model (and the other cheap options) are checked before the questions load


def test_answer_unknown_model_before_loading_questions(registry: Path, tmp_path: Path, offline: None) -> None:
    out = tmp_path / "answers"
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-m", "nope", "-b", "mt-bench", "-o", out), "unknown model 'nope'")
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--temperature", "nan"], "--temperature nan"),
    (["--temperature", "2.5"], "--temperature 2.5"),
    (["--temperature", "-1"], "--temperature -1"),
    (["--timeout", "0"], "--timeout 0"),
    (["--data-dir", "/no/such/folder"], "no such file or folder"),
])
def test_answer_bad_options_before_loading_questions(registry: Path, tmp_path: Path, offline: None, args, needle) -> None:
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-b", "mt-bench", "-o", tmp_path / "a", *args), needle)


@pytest.mark.parametrize("args,option", [(["--concurrency", "0"], "--concurrency"), (["--max-tokens", "0"], "--max-tokens"),
                                         (["--retries", "0"], "--retries"), (["--limit", "0"], "--limit")])
def test_answer_integer_ranges(registry: Path, tmp_path: Path, offline: None, args, option) -> None:
    usage_error(invoke("answer", "-r", registry, "-m", "m1", "-b", "mt-bench", "-o", tmp_path / "a", *args), option)


@pytest.mark.parametrize("args,needle", [
    (["-j", "nope"], "unknown model 'nope'"),
    (["--temperature", "inf"], "--temperature inf"),
    (["--timeout", "-3"], "--timeout -3"),
    (["--rating-rule", "bogus"], "--rating-rule 'bogus'"),
    (["--prompt", "no-such-prompt"], "unknown judge prompt 'no-such-prompt'"),
    (["-a", "/no/such/answers"], "/no/such/answers: no such file or folder"),
])
def test_run_bad_options_before_loading_questions(registry: Path, tmp_path: Path, offline: None, args, needle) -> None:
    ans = tmp_path / "answers"
    ans.mkdir()
    (ans / "m1.jsonl").write_text(json.dumps({"uid": "q1", "model": "m1", "messages": [{"role": "user", "content": "q"},
                                                                                         {"role": "assistant", "content": {"answer": "a"}}]}) + "\n")
    base = ["run", "-r", registry, "-b", "mt-bench", "-a", ans, "-o", tmp_path / "j.jsonl"]
    if "-j" not in args:
        base += ["-j", "m1"]
    one_line_error(invoke(*base, *args), needle)


@pytest.mark.parametrize("args,option", [(["--concurrency", "0"], "--concurrency"), (["--max-tokens", "0"], "--max-tokens")])
def test_run_integer_ranges(registry: Path, tmp_path: Path, args, option) -> None:
    usage_error(invoke("run", "-r", registry, "-j", "m1", "-b", "mt-bench", "-a", tmp_path, "-o", tmp_path / "j.jsonl", *args), option)


def test_quality_level_and_missing_files(pairwise: Path, tmp_path: Path) -> None:
    one_line_error(invoke("quality", pairwise, "--reference", pairwise, "--level", "2"), "--level 2")
    one_line_error(invoke("quality", tmp_path / "nope.jsonl", "--reference", pairwise), "nope.jsonl: no such file or folder")
    one_line_error(invoke("quality", f"{pairwise}={tmp_path / 'map.json'}", "--reference", pairwise), "map.json: no such file or folder")


# 5. a missing input is "no such file or folder"


@pytest.mark.parametrize("cmd", ["show", "audit"])
def test_missing_source(cmd: str, tmp_path: Path, pairwise: Path) -> None:
    one_line_error(invoke(cmd, tmp_path / "nowhere"), f"{tmp_path / 'nowhere'}: no such file or folder")
    one_line_error(invoke(cmd, pairwise, "-a", tmp_path / "no-answers"), "no-answers: no such file or folder")


# 6. output paths that cannot be written: one line, exit 2, before the work


@pytest.fixture()
def blocker(tmp_path: Path) -> Path:
    f = tmp_path / "a-file"
    f.write_text("x")
    return f


def test_show_stats_out_unwritable(pairwise: Path, blocker: Path, tmp_path: Path) -> None:
    one_line_error(invoke("show", pairwise, "-q", "--stats-out", blocker / "x.jsonl"), "is a file, not a folder")
    one_line_error(invoke("show", pairwise, "-q", "--stats-out", blocker / "sub" / "x.jsonl"), str(blocker))
    one_line_error(invoke("show", pairwise, "-q", "--stats-out", tmp_path), "is a folder")
    # and into a missing folder it is made, as before
    ok = invoke("show", pairwise, "-q", "--rounds", "10", "--stats-out", tmp_path / "new" / "stats.jsonl")
    assert ok.exit_code == 0, ok.output and (tmp_path / "new" / "stats.jsonl").is_file()


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_output_under_proc(pairwise: Path, registry: Path, tmp_path: Path, offline: None) -> None:
    one_line_error(invoke("show", pairwise, "-q", "--stats-out", "/proc/forbidden/x.jsonl"), "/proc/forbidden")
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-b", "mt-bench", "-o", "/proc/forbidden/a"), "/proc/forbidden")
    ans = tmp_path / "answers"
    ans.mkdir()
    (ans / "m1.jsonl").write_text(json.dumps({"uid": "q1", "model": "m1", "messages": [{"role": "user", "content": "q"},
                                                                                         {"role": "assistant", "content": {"answer": "a"}}]}) + "\n")
    one_line_error(invoke("run", "-r", registry, "-j", "m1", "-b", "mt-bench", "-a", ans, "-o", "/proc/forbidden/x.jsonl"),
                   "/proc/forbidden")


def test_answer_and_run_outputs_unwritable(registry: Path, blocker: Path, tmp_path: Path, offline: None) -> None:
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-b", "mt-bench", "-o", blocker), "is a file, not a folder")
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-b", "mt-bench", "-o", blocker / "sub"), str(blocker))
    ans = tmp_path / "answers"
    ans.mkdir()
    (ans / "m1.jsonl").write_text(json.dumps({"uid": "q1", "model": "m1", "messages": [{"role": "user", "content": "q"},
                                                                                         {"role": "assistant", "content": {"answer": "a"}}]}) + "\n")
    one_line_error(invoke("run", "-r", registry, "-j", "m1", "-b", "mt-bench", "-a", ans, "-o", blocker / "j.jsonl"), "is a file, not a folder")
    one_line_error(invoke("run", "-r", registry, "-j", "m1", "-b", "mt-bench", "-a", ans, "-o", tmp_path), "is a folder")


def test_response_cache_that_cannot_be_opened(registry: Path, tmp_path: Path) -> None:
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"uid": "q1", "category": "c", "prompt": "hi"}) + "\n")
    out = tmp_path / "answers"
    (out / ".openarena-cache.sqlite").mkdir(parents=True)  # a folder where the cache file goes
    one_line_error(invoke("answer", "-r", registry, "-m", "m1", "-b", q, "-o", out, "-q"), "cannot open the response cache")

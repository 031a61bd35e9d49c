"""The judge debts of issue 11, each on real data or a scripted mock judge: single-grade audits
(length bias, self-preference) on the real GPT-4 gradings, arena-bench-v1 files read by `judge
show`, FastChat's both-orders-agree rule beside Arena-Hard's, `judge run` without the baseline's
answers (exit 2, named), and the judge's settings and reported fingerprint in every record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.demo.mock_server import Behaviour, MockServer
from openarena.judging.answers import Answer
from openarena.judging.audits import single_length_bias, single_self_preference
from openarena.judging.pairwise import judgments_to_battles
from openarena.judging.single import load_single_judgments
from tests.conftest import shared_file
from tests.judging.test_pipeline import QS, QUALITY, answerer, judge_fn

runner = CliRunner()
V1 = "arena_hard_auto/data/arena-bench-v1"


def text(r) -> str:
    return " ".join(r.output.split())


def test_arena_bench_v1_single_grades_are_read_and_audited() -> None:
    judg = shared_file(f"{V1}/model_judgment")
    recs = load_single_judgments(judg, default_judge="gpt-4")
    assert len(recs) == 4800 and {r["turn"] for r in recs} == {1}
    assert sum(r["score"] is None for r in recs) == 40  # null scores: gradings without a rating
    r = runner.invoke(app, ["judge", "show", str(judg), "-q", "--rounds", "10", "-f", "json"])
    assert r.exit_code == 0, r.output
    overall = {row["model"]: row for row in json.loads(r.output)["overall"]}
    assert len(overall) == 16 and overall["gpt-4-1106-preview"]["score"] == pytest.approx(8.865, abs=1e-3)
    r = runner.invoke(app, ["judge", "audit", str(judg), "-a", str(shared_file(f"{V1}/model_answer")), "--judge-name", "gpt-4"])
    assert r.exit_code == 0, r.output
    t = text(r)
    # GPT-4 grades longer answers higher within a question: 62.1% of 27,557 comparable pairs
    assert "of 27,557 pairs" in t and "in 62.1% (95% CI 61.5%-62.7%" in t and "+0.266 over 300 questions" in t
    assert "position bias does not apply" in t
    assert "gpt-4 │ openai │ 4 │ 12 │ 7.71 │ 4.98" in t


def test_mt_bench_single_grades_audit_real_gpt4() -> None:
    f = shared_file("routellm/routellm/evals/mt_bench/judgements.jsonl")
    r = runner.invoke(app, ["judge", "audit", str(f)])
    assert r.exit_code == 0, r.output  # was: refused (no question judged in both orders)
    assert "gpt-4 │ openai │ 1 │ 1 │ 9.23 │ 8.34" in text(r)


def test_single_audits_known_truth() -> None:
    # judge j1 grades by length; j2 ignores length and prefers its own family by 2 points
    answers = {m: {f"q{i}": Answer(f"q{i}", m, ("x " * (10 * (k + 1)),)) for i in range(5)}
               for k, m in enumerate(["gpt-a", "claude-b", "llama-c"])}
    recs = []
    for i in range(5):
        for k, m in enumerate(["gpt-a", "claude-b", "llama-c"]):
            recs.append({"uid": f"q{i}", "model": m, "turn": 1, "score": 2.0 + k, "judge": {"model": "j1"}})
            recs.append({"uid": f"q{i}", "model": m, "turn": 1, "score": 5.0 + (2 if m.startswith("claude") else 0),
                         "judge": {"model": "claude-j"}})
    lb = single_length_bias(recs, answers)
    by = lb.by_judge.set_index("judge")
    assert by.loc["j1", "longer_higher"] == 1.0 and by.loc["j1", "pairs"] == 15 and by.loc["j1", "spearman"] == pytest.approx(1.0)
    assert by.loc["claude-j", "pairs"] == 10 and by.loc["claude-j", "longer_higher"] == 0.5
    sp = single_self_preference(recs).table.set_index("judge")
    # claude-j: own (claude-b) 7 vs j1's 3 -> +4; others 5 vs j1's 2 and 4 -> mean +2; difference 2
    assert sp.loc["claude-j", "self_preference"] == pytest.approx(4.0 - 2.0)


def _games(label1: str, label2: str, uid: str = "q1") -> list[dict]:
    return [{"uid": uid, "model": "m", "baseline": "b", "game": g, "label": lab, "status": "ok", "judge": {"model": "j"}}
            for g, lab in ((1, label1), (2, label2))]


def test_fastchat_rule_both_orders_must_agree() -> None:
    # game 1: baseline as A, B>A = the model wins; game 2: model as A, A>B = the model wins -> win
    recs = _games("B>A", "A>B", "q1") + _games("B>A", "B>A", "q2") + _games("A>B", "B>A", "q3") + _games("A=B", "A>B", "q4")
    fc, info = judgments_to_battles(recs, rule="fastchat")
    assert list(fc.frame["winner"]) == ["model_b", "tie", "model_a", "tie"] and info["rule"] == "fastchat"
    ah, info = judgments_to_battles(recs, rule="arena-hard")
    assert len(ah.frame) == 8 and not info["much_better"]
    _, info = judgments_to_battles(_games("B>>A", "A>B"), rule="arena-hard")
    assert info["much_better"] and info["rows"] == 4


def test_show_names_the_rule_and_no_much_better_for_fastchat_labels(tmp_path: Path) -> None:
    f = tmp_path / "j.jsonl"
    recs = []
    for i in range(6):
        for m, win in (("alpha", i < 4), ("beta", i < 2)):
            recs += [{**r, "model": m, "uid": f"q{i}"} for r in _games("B>A" if win else "A>B", "A>B" if win else "B>A")]
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = runner.invoke(app, ["judge", "show", str(f), "--rounds", "10"])
    assert r.exit_code == 0, r.output
    assert "rule arena-hard: each game a battle" in text(r) and "much better" not in text(r)
    r = runner.invoke(app, ["judge", "show", str(f), "--rounds", "10", "--rule", "fastchat"])
    assert r.exit_code == 0 and "rule fastchat: one battle per question, a win only when both orders agree" in text(r)
    doc = json.loads(runner.invoke(app, ["judge", "show", str(f), "-q", "-f", "json", "--rounds", "10", "--rule", "fastchat"]).output)
    assert doc["rule"].startswith("rule fastchat")
    r = runner.invoke(app, ["judge", "show", str(f), "--rule", "elo"])
    assert r.exit_code == 2 and "--rule 'elo'" in text(r)


def _registry(tmp_path: Path, srv: MockServer, extra: str = "") -> Path:
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n" + "".join(f"  - name: {m}\n    base_url: {srv.base_url}\n" for m in QUALITY)
                   + f"  - name: judge\n    base_url: {srv.base_url}\n    top_p: 0.9\n    extra_body: {{reasoning_effort: high}}\n")
    return reg


def test_run_without_baseline_answers_exits_2_and_records_judge_settings(tmp_path: Path) -> None:
    with MockServer({m: Behaviour.from_function(answerer(m)) for m in QUALITY} | {"judge": Behaviour.from_function(judge_fn)}) as srv:
        reg = _registry(tmp_path, srv)
        qfile = tmp_path / "q.jsonl"
        qfile.write_text("".join(json.dumps({"uid": q.uid, "category": q.category, "prompt": q.prompt}) + "\n" for q in QS))
        ans = tmp_path / "answers"
        assert runner.invoke(app, ["judge", "answer", "-r", str(reg), "-m", "alpha", "-b", str(qfile), "-o", str(ans), "-q"]).exit_code == 0
        out = tmp_path / "j.jsonl"
        n = len(srv.requests)
        r = runner.invoke(app, ["judge", "run", "-r", str(reg), "-j", "judge", "-b", str(qfile), "-a", str(ans), "-o", str(out),
                                "--baseline", "base", "-q"])
        assert r.exit_code == 2 and "no answers of base to any of the 6 questions" in text(r)
        assert len(srv.requests) == n  # nothing asked
        # the baseline answers 5 of 6: judged what can be, the missing one named, exit 2
        assert runner.invoke(app, ["judge", "answer", "-r", str(reg), "-m", "base", "-b", str(qfile), "-o", str(ans), "-q"]).exit_code == 0
        lines = (ans / "base.jsonl").read_text().splitlines()
        keep = [x for x in lines if json.loads(x).get("uid", json.loads(x).get("question_id")) != "q5"]
        assert len(keep) == 5
        (ans / "base.jsonl").write_text("\n".join(keep) + "\n")
        r = runner.invoke(app, ["judge", "run", "-r", str(reg), "-j", "judge", "-b", str(qfile), "-a", str(ans), "-o", str(out),
                                "--baseline", "base", "-q", "--no-cache"])
        assert r.exit_code == 2, r.output
        assert "pairwise: 10 judged now" in text(r) and "missing answers of base to 1 question(s): q5" in text(r)
        rec = json.loads(out.read_text().splitlines()[0])
        assert rec["judge"]["top_p"] == 0.9 and rec["judge"]["extra_body"] == {"reasoning_effort": "high"}
        assert rec["judge"]["system_fingerprint"] == "openarena-mock" and rec["judge"]["served_model"] == "judge"
        body = [q.body for q in srv.requests if q.model == "judge"][-1]
        assert body["top_p"] == 0.9 and body["reasoning_effort"] == "high"

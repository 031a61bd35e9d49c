"""The whole answer -> judge -> show pipeline against a local server speaking the OpenAI protocol
(MockServer on loopback), with scripted answers and verdicts, a malformed verdict, timeouts, a
killed answer run (SIGKILL of the CLI process) and an interrupted judge run (Ctrl-C) that resume
without repeating finished calls. The server records every request; the counts are asserted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openarena.demo.mock_server import Behaviour, MockServer
from openarena.judging.answers import generate_answers, read_answers
from openarena.judging.judge import CONTINUE_VERDICT, JudgeSettings
from openarena.judging.pairwise import judge_pairwise, judgments_to_battles, load_judgments
from openarena.judging.questions import Question, QuestionSet, load_questions
from openarena.judging.report import mt_bench_summary, pairwise_report
from openarena.judging.single import grade_single, load_single_judgments
from openarena.providers import ResponseCache, RetryPolicy
from tests.conftest import DATA, shared_file

FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)
CATS = ["coding", "coding", "coding", "writing", "writing", "writing"]
QS = QuestionSet("toy", [Question(f"q{i}", CATS[i], (f"Question {i}: explain topic {i}.",)) for i in range(6)])
# each model's scripted answer quality per question; the baseline is 2 everywhere
QUALITY = {"alpha": [3, 3, 1, 3, 2, 3], "beta": [1, 2, 2, 1, 4, 2], "base": [2] * 6}
PRICE = {"input_per_million": 1.0, "output_per_million": 2.0}


def last_user(body: dict) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def answerer(model: str):
    def answer(body: dict) -> str:
        i = int(re.search(r"Question (\d+)", last_user(body)).group(1))
        k = QUALITY[model][i]
        # longer and more markdown for better answers (for the audits)
        return f"Answer of {model} to question {i}, quality={k}. " + "More detail. " * (3 * k) + "\n- point\n" * k
    return answer


def verdict(qa: int, qb: int) -> str:
    d = qa - qb
    return {2: "A>>B", 1: "A>B", 0: "A=B", -1: "B>A", -2: "B>>A"}[max(-2, min(2, d))]


def judge_fn(body: dict) -> str:
    """The scripted judge: compares the quality marks of the two answers.
    Malformed cases: alpha/q1 with alpha as assistant A: the first output has no label (the
    continuation has it); beta/q2 with the baseline as A: never a label."""
    msgs = body["messages"]
    if msgs[-1]["content"] == CONTINUE_VERDICT:
        user = msgs[1]["content"]
        cont = True
    else:
        user = msgs[-1]["content"]
        cont = False
    a = user.split("<|The Start of Assistant A's Answer|>")[1].split("<|The End of Assistant A's Answer|>")[0].strip()
    b = user.split("<|The Start of Assistant B's Answer|>")[1].split("<|The End of Assistant B's Answer|>")[0]
    qa, qb = (int(re.search(r"quality=(\d)", x).group(1)) for x in (a, b))
    q = int(re.search(r"Question (\d+)", user).group(1))
    if q == 1 and a.startswith("Answer of alpha") and not cont:
        return "Assistant A is clearly better, I would say, but I ran out of"
    if q == 2 and a.startswith("Answer of base") and "Answer of beta" in b:
        return "Both answers are fine." if not cont else "Still thinking about it."
    return f"Some reasoning. My final verdict is: [[{verdict(qa, qb)}]]"


def expected_win_rate(model: str, dropped: set[int] = frozenset()) -> float:
    num = den = 0.0
    for i, k in enumerate(QUALITY[model]):
        if i in dropped:
            continue
        label = verdict(k, 2)
        s, w = {"A>>B": (1, 3), "A>B": (1, 1), "A=B": (0.5, 1), "B>A": (0, 1), "B>>A": (0, 3)}[label]
        num += 2 * s * w  # both games give the same outcome from the model's side
        den += 2 * w
    return 100 * num / den


@pytest.fixture
def srv():
    with MockServer({m: Behaviour.from_function(answerer(m)) for m in QUALITY} | {"judge": Behaviour.from_function(judge_fn)}) as server:
        yield server


def test_answer_judge_show_pipeline(srv: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "answers"
    # --- answers: beta first times out (the server hangs longer than the 0.3 s timeout) -----
    srv.set_behaviour("beta", Behaviour(delay_s=5))
    # only beta gets the short timeout: a busy CI machine must not time out the healthy models
    reports = {m: generate_answers(srv.model_config(m, price=PRICE), QS, out, concurrency=3, retry=FAST, timeout_s=0.3 if m == "beta" else 30)
               for m in ("alpha", "beta", "base")}
    assert reports["alpha"].generated == 6 and reports["base"].complete
    beta = reports["beta"]
    assert beta.generated == 0 and len(beta.failures) == 6 and not beta.complete
    assert {f.kind for f in beta.failures} == {"timeout"} and {f.attempts for f in beta.failures} == {2}
    assert len(srv.requests_for("beta")) == 12  # 6 questions x 2 attempts
    # tokens and cost from the server's usage and the registry price
    recs = [json.loads(x) for x in (out / "alpha.jsonl").read_text().splitlines()]
    p_tok = sum(r["usage"]["prompt_tokens"] for r in recs)
    c_tok = sum(r["usage"]["completion_tokens"] for r in recs)
    assert (reports["alpha"].prompt_tokens, reports["alpha"].completion_tokens) == (p_tok, c_tok)
    assert reports["alpha"].cost_usd == pytest.approx((p_tok * 1.0 + c_tok * 2.0) / 1e6)
    assert p_tok == sum(len(q.prompt.split()) for q in QS)
    assert recs[0]["generation"]["endpoint_model"] == "alpha" and recs[0]["metadata"]["token_len"] > 0
    # the server is fixed; a re-run fills only the gaps
    srv.set_behaviour("beta", Behaviour.from_function(answerer("beta")))
    n_before = {m: len(srv.requests_for(m)) for m in QUALITY}
    again = {m: generate_answers(srv.model_config(m, price=PRICE), QS, out, concurrency=3, retry=FAST) for m in QUALITY}
    assert {m: len(srv.requests_for(m)) - n_before[m] for m in QUALITY} == {"alpha": 0, "beta": 6, "base": 0}
    assert again["beta"].generated == 6 and again["alpha"].existing == 6 and all(r.complete for r in again.values())

    # --- judging: both orders, a malformed verdict retried, one that stays unparseable ------
    answers = read_answers(out)
    judgments = tmp_path / "judgments.jsonl"
    js = JudgeSettings(srv.model_config("judge"), seed=7, retry=FAST)
    rep = judge_pairwise(QS, answers, ["alpha", "beta"], js, judgments, baseline="base", concurrency=4)
    assert (rep.games, rep.judged, rep.existing) == (24, 24, 0)
    # alpha/q1 game 2 (alpha as A) retried and parsed; beta/q2 game 1 retried, still unparseable
    assert (rep.retried, rep.unparseable, rep.failures) == (2, 1, [])
    judge_requests = srv.requests_for("judge")
    assert len(judge_requests) == 24 + 2
    assert sum(r.body["messages"][-1]["content"] == CONTINUE_VERDICT for r in judge_requests) == 2
    assert {r.body["temperature"] for r in judge_requests} == {0.0} and {r.body["seed"] for r in judge_requests} == {7}
    assert {r.body["max_tokens"] for r in judge_requests} == {4096}
    records = load_judgments(judgments)
    bad = [r for r in records if r["status"] != "ok"]
    assert len(bad) == 1 and (bad[0]["model"], bad[0]["uid"], bad[0]["game"], bad[0]["status"]) == ("beta", "q2", 1, "missing")
    assert "after one retry" in bad[0]["reason"] and bad[0]["label"] is None and len(bad[0]["judgment"]) == 2
    r0 = records[0]
    assert r0["judge"]["model"] == "judge" and r0["judge"]["temperature"] == 0.0 and r0["judge"]["seed"] == 7
    assert r0["judge"]["prompt"] == "arena-hard" and len(r0["judge"]["prompt_sha256"]) == 64 and r0["judge"]["openarena_version"]
    game1 = next(r for r in records if r["game"] == 1)
    assert (game1["assistant_a"], game1["assistant_b"]) == ("base", game1["model"])  # baseline first in game 1
    # a second run judges nothing and calls nobody
    rep2 = judge_pairwise(QS, answers, ["alpha", "beta"], js, judgments, baseline="base")
    assert (rep2.judged, rep2.existing, len(srv.requests_for("judge"))) == (0, 24, 26)

    # --- show: battles -> Bradley-Terry -> win rate vs the baseline -------------------------
    battles, info = judgments_to_battles(records)
    assert info["dropped_questions"] == 1 and info["parsed_games"] == 23
    res = pairwise_report(battles, level=0.9, rounds=50, answers=answers)
    t = res.table.set_index("model")
    assert res.baseline == "base" and res.level == 0.9
    assert t.loc["alpha", "score"] == pytest.approx(expected_win_rate("alpha"), abs=1e-6)  # 75.0
    assert t.loc["beta", "score"] == pytest.approx(expected_win_rate("beta", {2}), abs=1e-6)  # 4/7
    assert t.loc["base", "score"] == 50.0 and t.loc["base", "rating"] == 1000.0
    assert (t["lower"] <= t["score"] + 1e-9).all() and (t["score"] <= t["upper"] + 1e-9).all()
    assert set(res.categories) == {"coding", "writing"}  # per-category tables
    # 3 questions per category are too few for every bootstrap resample to have a finite MLE:
    # those tables come without interval, and the notes say why
    assert all("no interval" in n for n in res.notes) and np.isfinite(res.categories["coding"].set_index("model").loc["alpha", "score"])
    assert t.loc["alpha", "avg_tokens"] > t.loc["base", "avg_tokens"]


def test_interrupted_judge_run_resumes_without_repeating_calls(srv: MockServer, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) in the middle of judging: finished games are on disk, and the re-run asks
    the judge only for the others; with the response cache not even the interrupted games'
    finished calls are repeated."""
    out = tmp_path / "answers"
    for m in QUALITY:
        generate_answers(srv.model_config(m), QS, out)
    answers = read_answers(out)
    judgments = tmp_path / "j.jsonl"
    js = JudgeSettings(srv.model_config("judge"), retry=FAST)
    cache = ResponseCache(tmp_path / "cache.sqlite")

    def ctrl_c(done: int, total: int) -> None:
        if done == 5:
            os.kill(os.getpid(), signal.SIGINT)

    # A shell starts a background job (``make test &``, ``setsid ... &``) with SIGINT ignored,
    # and Python then leaves it ignored: put Python's own Ctrl-C handler in place for this test,
    # so the signal raises KeyboardInterrupt whatever the terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            judge_pairwise(QS, answers, ["alpha"], js, judgments, baseline="base", concurrency=1, cache=cache, progress=ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)
    first = [r.body for r in srv.requests_for("judge")]
    done = load_judgments(judgments)
    assert len(done) == 5
    rep = judge_pairwise(QS, answers, ["alpha"], js, judgments, baseline="base", concurrency=2, cache=cache)
    assert (rep.existing, rep.judged) == (5, 7)
    later = [r.body for r in srv.requests_for("judge")][len(first):]
    # no request of the second run repeats one of the first
    assert not any(b["messages"] == a["messages"] for b in later for a in first)
    assert len(first) + len(later) == 12 + 1  # 12 games + alpha/q1's continuation
    cache.close()


def test_judge_timeouts_are_reported_and_judged_on_rerun(srv: MockServer, tmp_path: Path) -> None:
    out = tmp_path / "answers"
    qs = QuestionSet("toy", QS.questions[:2])
    for m in ("alpha", "base"):
        generate_answers(srv.model_config(m), qs, out)
    answers = read_answers(out)
    srv.set_behaviour("judge", Behaviour(delay_s=5))
    js = JudgeSettings(srv.model_config("judge"), retry=FAST, timeout_s=1.0)  # well under the 5 s delay, and above a loaded machine's connect time
    judgments = tmp_path / "j.jsonl"
    rep = judge_pairwise(qs, answers, ["alpha"], js, judgments, baseline="base")
    assert rep.judged == 0 and len(rep.failures) == 4 and all("timeout" in f.error for f in rep.failures)
    assert not judgments.exists() and len(srv.requests_for("judge")) == 8  # 4 games x 2 attempts
    srv.set_behaviour("judge", Behaviour.from_function(judge_fn))
    # the re-run with a patient timeout (a loaded machine can take over a second per answer)
    js = JudgeSettings(srv.model_config("judge"), retry=FAST, timeout_s=60)
    rep = judge_pairwise(qs, answers, ["alpha"], js, judgments, baseline="base")
    assert (rep.judged, rep.failures) == (4, [])
    assert len(srv.requests_for("judge")) == 8 + 4 + 1  # + alpha/q1's continuation


def test_killed_answer_run_resumes(srv: MockServer, tmp_path: Path) -> None:
    """`openarena judge answer` killed with SIGKILL half-way: the answers written before the kill
    survive; the re-run requests exactly the questions that had no answer."""
    srv.set_behaviour("slow", Behaviour.from_function(answerer("alpha"), chunk_delay_s=0.02))
    registry = tmp_path / "models.yaml"
    registry.write_text(f"models:\n  - name: slow\n    base_url: {srv.base_url}\n    price: {{input_per_million: 1, output_per_million: 2}}\n")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps({"uid": q.uid, "category": q.category, "prompt": q.prompt}) + "\n" for q in QS))
    out = tmp_path / "answers"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "openarena.cli.main", "judge", "answer", "-r", str(registry), "-m", "slow",
           "-b", str(qfile), "-o", str(out), "-c", "1", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    path = out / "slow.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().count("\n") >= 2:
                break
            if proc.poll() is not None:
                pytest.fail(f"answer run ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    survived = {json.loads(x)["uid"] for x in path.read_text().splitlines() if x.strip()}
    assert 2 <= len(survived) < 6
    n_killed_run = len(srv.requests_for("slow"))
    rep = generate_answers(srv.model_config("slow"), QS, out, concurrency=2)
    again = srv.requests_for("slow")[n_killed_run:]
    asked = {re.search(r"Question (\d+)", last_user(r.body)).group(1) for r in again}
    assert {f"q{i}" for i in asked} == {q.uid for q in QS} - survived
    assert len(again) == 6 - len(survived) and rep.existing == len(survived) and rep.complete
    uids = [json.loads(x)["uid"] for x in path.read_text().splitlines()]
    assert sorted(uids) == sorted(q.uid for q in QS)  # each question answered once


def test_mt_bench_single_grading(srv: MockServer, tmp_path: Path) -> None:
    """Three real MT-Bench questions (writing, math with a reference, reasoning), two turns each,
    graded by a scripted judge; math and reasoning are graded against the GPT-4 reference."""
    shared_file("fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl")
    allq = load_questions("mt-bench", local_root=DATA)
    qs = QuestionSet("mt-bench", [allq.get("81"), allq.get("111"), allq.get("101")])

    def two_turns(body: dict) -> str:
        n = sum(m["role"] == "user" for m in body["messages"])
        return f"turn {n} answer"

    def grader(body: dict) -> Any:
        user = body["messages"][-1]["content"]
        if "### User:" in user:  # multi-turn prompt: grading turn 2
            return "Good follow-up. Rating: [[6]]"
        if "[The Start of Reference Answer]" in user:
            return "Matches the reference. Rating: [[9]]"
        return "Fine. Rating: [[8]]"

    srv.set_behaviour("chat", Behaviour.from_function(two_turns))
    srv.set_behaviour("grader", Behaviour.from_function(grader))
    out = tmp_path / "answers"
    rep = generate_answers(srv.model_config("chat"), qs, out, temperature_by_category={"writing": 0.7, "math": 0.0, "reasoning": 0.0})
    assert rep.calls == 6
    temps = [r.body["temperature"] for r in srv.requests_for("chat")]
    assert sorted(temps) == [0.0, 0.0, 0.0, 0.0, 0.7, 0.7]
    answers = read_answers(out)
    assert answers["chat"]["111"].turns == ("turn 1 answer", "turn 2 answer")
    judgments = tmp_path / "single.jsonl"
    srep = grade_single(qs, answers, ["chat"], JudgeSettings(srv.model_config("grader")), judgments)
    assert (srep.gradings, srep.graded, srep.unparseable) == (6, 6, 0)
    reqs = srv.requests_for("grader")
    with_ref = [r for r in reqs if "Reference Answer" in r.body["messages"][-1]["content"]]
    assert len(with_ref) == 4  # math and reasoning, both turns
    assert {r.body["max_tokens"] for r in reqs} == {2048}
    prompts = {r["judge"]["prompt"] for r in load_single_judgments(judgments)}
    assert prompts == {"single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"}
    s = mt_bench_summary(load_single_judgments(judgments))
    row = s.overall.set_index("model").loc["chat"]
    assert (row["turn_1"], row["turn_2"], row["n"]) == (pytest.approx((8 + 9 + 9) / 3), 6.0, 6)
    assert row["score"] == pytest.approx((8 + 9 + 9 + 6 * 3) / 6)
    assert s.by_category.loc["chat", "writing"] == 7.0 and s.by_category.loc["chat", "math"] == 7.5

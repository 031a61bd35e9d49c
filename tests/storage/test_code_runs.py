"""Code-run results in the battle's meta (storage/code_runs.py), on SQLite and PostgreSQL:
concurrent runs are all kept (no lost update of the JSON), the turn's own meta survives, and
the vote join tells "neither ran" from "both ran"."""

from __future__ import annotations

import threading

from openarena.storage.battles import create_battle, finish_turn, get_battle
from openarena.storage.code_runs import code_run_votes, record_run, run_outcomes
from openarena.storage.votes import record_vote

OK = {"stdout": "42\n", "stderr": "", "exit_code": 0, "timed_out": False, "truncated": False, "images": ["iVBOR"], "message": "ok", "duration_s": 0.2}
BAD = {**OK, "stdout": "", "exit_code": 1, "images": []}
SLOW = {**BAD, "exit_code": -9, "timed_out": True}


def _battle(db, sh="s1"):
    bid = create_battle(db, mode="anony", model_a="x", model_b="y", session_hash=sh)
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "```python\nprint(42)\n```"}]
    finish_turn(db, bid, conversation_a=conv, conversation_b=conv, turns=1, meta={"a": {"latency_s": 1.0}, "b": {"latency_s": 2.0}})
    return bid


def test_concurrent_runs_are_all_recorded(db):
    bid = _battle(db)

    def go(i):
        record_run(db, bid, "s1", "a" if i % 2 else "b", turn=1, block=0, code="print(42)", result=OK if i % 3 else BAD, now=float(i))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = get_battle(db, bid).meta
    assert sorted(r["tstamp"] for s in "ab" for r in meta["runs"][s]) == [float(i) for i in range(12)]
    assert meta["a"] == {"latency_s": 1.0}  # the turn's meta is untouched
    r = next(x for x in meta["runs"]["a"] if x["exit_code"] == 0)
    assert r["n_images"] == 1 and len(r["image_sha256"][0]) == 64 and len(r["code_sha256"]) == 64 and "images" not in r


def test_outcomes_split_both_bad_votes(db):
    neither, both = _battle(db), _battle(db)
    record_run(db, neither, "s1", "a", turn=1, block=0, code="c", result=BAD)
    record_run(db, neither, "s1", "b", turn=1, block=0, code="c", result=SLOW)
    record_run(db, both, "s1", "a", turn=1, block=0, code="c", result=BAD)
    record_run(db, both, "s1", "a", turn=1, block=0, code="c", result=OK)  # ran on the second try
    record_run(db, both, "s1", "b", turn=1, block=0, code="c", result=OK)
    assert record_run(db, both, "other-session", "b", turn=1, block=0, code="c", result=OK) is False
    untouched = _battle(db)
    for bid in (neither, both, untouched):
        record_vote(db, bid, "s1", "tie (bothbad)")
    rows = {r["battle_id"]: (r["winner"], r["run_a"], r["run_b"]) for r in code_run_votes(db)}
    assert rows == {neither: ("tie (bothbad)", "failed", "failed"), both: ("tie (bothbad)", "ran", "ran")}
    assert run_outcomes(get_battle(db, both).meta, 2) == {"a": "not_run", "b": "not_run"}  # runs of turn 1 only

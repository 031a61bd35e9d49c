"""The vote transaction on PostgreSQL: pipelined, without its lock deadline, and with one round trip per statement.

    .venv/bin/python bench/vote_transaction.py [--db postgresql://postgres@127.0.0.1:5432/test] [--votes 2000] [--batches 1,8]

A vote batch of :class:`openarena.storage.votes.VoteWriter` holds its battles' rows and its
voters' advisory locks from its read to its COMMIT, so its round trips are most of its time
(and of the time other workers' votes of the same voters wait). This bench writes ``--votes``
answered battles for 50 voters into a schema of its own, then records their votes through the
writer's transaction (``VoteWriter._commit``, the vote-integrity checks on), one batch after the
other, in batches of each size of ``--batches``, on fresh battles each time, three ways:
as the server does (statements pipelined: 4 round trips per batch, 4 of the statements setting
the batch's lock deadline, ``storage.db.lock_budget``); the same without the lock-deadline
statements (what they cost); and with pipeline mode off (every statement its own round trip:
11). It prints one table: wall time, this process's CPU and PostgreSQL's CPU (every
``postgres`` process of this machine, so run it on a quiet one) per vote, and the speed-up
against one round trip per statement. The schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openarena.serving.vote_integrity import IntegrityPolicy  # noqa: E402
from openarena.storage import Database, db as db_module, integrity as integrity_module  # noqa: E402
from openarena.storage.battles import acquire_turn, create_battle, finish_turn  # noqa: E402
from openarena.storage.votes import VoteWriter, _VoteRequest  # noqa: E402

CONV = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there " * 20}]


def postgres_cpu() -> float:
    """CPU seconds used so far by every postgres process of this machine."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"postgres" not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def battles(db: Database, n: int, voters: list[str]) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        v = voters[i % len(voters)]
        bid = create_battle(db, mode="anony", model_a="m-a", model_b="m-b", session_hash=v, sampling_policy="fastchat", sampling_prob=1 / 6)
        acquire_turn(db, bid, v)
        finish_turn(db, bid, conversation_a=CONV, conversation_b=CONV, turns=1)
        out.append((bid, v))
    return out


def run(db: Database, todo: list[tuple[str, str]], batch: int) -> tuple[float, float, float]:
    writer = VoteWriter(db, integrity=IntegrityPolicy())
    t0, c0, p0 = time.perf_counter(), time.process_time(), postgres_cpu()
    for j in range(0, len(todo), batch):
        res = writer._commit([(_VoteRequest(b, v, "model_a", None, True, None, None, time.time()), None) for b, v in todo[j:j + batch]])
        assert all(r is not None and not isinstance(r, BaseException) for r in res), res[:2]
    t1, c1, p1 = time.perf_counter(), time.process_time(), postgres_cpu()
    writer.stop()
    n = len(todo)
    return (t1 - t0) / n * 1e3, (c1 - c0) / n * 1e3, (p1 - p0) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--votes", type=int, default=2000)
    p.add_argument("--batches", default="1,8")
    args = p.parse_args()
    import psycopg

    schema = "bench_vote_" + secrets.token_hex(4)
    with psycopg.connect(args.db, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    db = Database.open(args.db + ("&" if "?" in args.db else "?") + f"options=-csearch_path%3D{schema}")
    voters = [secrets.token_hex(16) for _ in range(50)]
    rows = []
    real_pipeline, real_budget = db_module._pipeline_supported, db_module.lock_budget
    modes = {  # (pipeline mode on?, lock-deadline statements sent?)
        "pipelined": (True, True),
        "pipelined, no lock deadline": (True, False),
        "one round trip per statement": (False, True),
    }

    def use(pipelined: bool, budget: bool) -> None:
        db_module._pipeline_supported = real_pipeline if pipelined else (lambda raw: False)
        db_module.lock_budget = integrity_module.lock_budget = real_budget if budget else (lambda conn, raw: None)

    try:
        for batch in [int(x) for x in args.batches.split(",")]:
            got = {}
            for mode, how in modes.items():
                use(*how)
                got[mode] = run(db, battles(db, args.votes, voters), batch)
            use(True, True)
            base = got["one round trip per statement"][0]
            for mode, (wall, cpu, pg) in got.items():
                rows.append((batch, mode, wall, cpu, pg, base / wall))
    finally:
        use(True, True)
        db.dispose()
        with psycopg.connect(args.db, autocommit=True) as c:
            c.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"vote transaction on PostgreSQL, {args.votes} votes per row, vote-integrity checks on, one writer")
    print("| votes per batch | statements | wall ms/vote | Python CPU ms/vote | PostgreSQL CPU ms/vote | speed-up |")
    print("|---|---|---|---|---|---|")
    for batch, mode, wall, cpu, pg, ratio in rows:
        print(f"| {batch} | {mode} | {wall:.3f} | {cpu:.3f} | {pg:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()

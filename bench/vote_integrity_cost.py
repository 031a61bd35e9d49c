"""What the vote-integrity checks cost a vote: CPU time per vote of :func:`record_vote` without
the checks and with them (default policy), on SQLite, for a voter key with few battles (a typical
session) and for one network with many battles in the day (a campus NAT or the load bench's
single client address), in batches of 1 and of 32 votes (the group commit under load).

Run from the repository root::

    .venv/bin/python bench/vote_integrity_cost.py            # ~1 min
    .venv/bin/python bench/vote_integrity_cost.py --db postgresql://postgres@127.0.0.1/test

CPU time (time.process_time of this process, which runs SQLite in-process) rather than wall
time, so the figure means something on a shared machine; on PostgreSQL the server's CPU is not
included, use the wall column there.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import print_rows  # noqa: E402
from openarena.serving.vote_integrity import IntegrityPolicy  # noqa: E402
from openarena.storage import Database  # noqa: E402
from openarena.storage.battles import acquire_turn, create_battle, finish_turn  # noqa: E402
from openarena.storage.votes import VoteWriter, _VoteRequest  # noqa: E402

MODELS = [f"model-{i}" for i in range(20)]


def battle(db, session: str, ip: str, k: int) -> str:
    a, b = MODELS[k % 20], MODELS[(k * 7 + 3) % 20 if (k * 7 + 3) % 20 != k % 20 else (k + 1) % 20]
    bid = create_battle(db, mode="anony", model_a=a, model_b=b, session_hash=session, ip_hash=ip, sampling_prob=0.01)
    acquire_turn(db, bid, session)
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]
    finish_turn(db, bid, conversation_a=conv, conversation_b=conv, turns=1)
    return bid


def run(db, policy, *, heavy_ip: bool, batch: int, votes: int) -> tuple[float, float]:
    """(CPU ms per vote, wall ms per vote) of ``votes`` votes committed in batches of ``batch``."""
    ip = "nat" if heavy_ip else None
    reqs = []
    for i in range(votes):
        session = secrets.token_hex(8)
        bid = battle(db, session, ip or secrets.token_hex(8), i)
        reqs.append(_VoteRequest(bid, session, "model_a", None, True, None, None, time.time()))
    writer = VoteWriter(db, integrity=policy)
    c0, w0 = time.process_time(), time.perf_counter()
    for j in range(0, votes, batch):
        chunk = [(r, None) for r in reqs[j:j + batch]]
        writer._commit(chunk)
    return (time.process_time() - c0) * 1000 / votes, (time.perf_counter() - w0) * 1000 / votes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--nat-battles", type=int, default=3000, help="battles of the heavy network before the measurement")
    ap.add_argument("--votes", type=int, default=256)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(args.db or f"sqlite:///{tmp}/bench.db")
        for k in range(args.nat_battles):  # a day of one busy network: answered battles, a third voted
            s = secrets.token_hex(8)
            bid = battle(db, s, "nat", k)
            if k % 3 == 0:
                VoteWriter(db)._commit([(_VoteRequest(bid, s, "tie", None, True, None, None, time.time()), None)])
        rows = []
        for heavy in (False, True):
            for batch in (1, 32):
                off = run(db, None, heavy_ip=heavy, batch=batch, votes=args.votes)
                on = run(db, IntegrityPolicy(), heavy_ip=heavy, batch=batch, votes=args.votes)
                label = f"{'one network with ' + format(args.nat_battles, ',') + ' battles' if heavy else 'fresh session and network'}, batch {batch}"
                rows.append([label, f"{off[0]:.2f}", f"{on[0]:.2f}", f"{on[0] / off[0]:.2f}x", f"{off[1]:.2f}", f"{on[1]:.2f}"])
        db.dispose()
    header = ["voter key, group commit", "CPU ms/vote, no checks", "with checks", "ratio", "wall ms/vote, no checks", "with checks"]
    print(f"database: {args.db or 'SQLite (temporary file)'}; {args.votes} votes per cell")
    print_rows(header, rows)


if __name__ == "__main__":
    main()

"""The re-roll attack (issue 8, defect 5) on the demo arena, with and without the vote-integrity
checks, measured on one replay (tests/serving/reroll.py: the real app through TestClient, the
demo registry and its sampling weights, the real pair sampler, one client per voter with its own
cookie jar and IP address).

Honest voters (one IP each) vote by a Bradley-Terry truth on a random 70% of their battles.
Each attack scenario re-rolls for the target (the weakest model, demo-slow, sampled at half the
weight of the others): open battles, vote for the target when its recognisable answer appears,
abandon the rest. The attacker gets the same acknowledgement whether or not its votes count, so
its behaviour does not depend on the safeguards, and one replay measures both columns: "no
safeguards" rates every stored vote (what the arena counted before), "safeguards" rates the
counted ones. Each scenario is rated with the honest votes alone plus its own votes (the
scenarios use different IPs and sessions, so they do not see each other).

Run from the repository root::

    .venv/bin/python bench/reroll_attack.py              # ~2-4 min on 2 busy cores
    .venv/bin/python bench/reroll_attack.py --honest 12  # quicker, noisier
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench._table import print_rows  # noqa: E402
from tests.serving.reroll import counted_by_role, demo_arena, honest_voter, ratings, reroll_attacker  # noqa: E402

TARGET = "demo-slow"
#: label -> (number of IPs, sessions per IP, votes per session)
SCENARIOS = {
    "1 IP, 1 session, 20 votes": (1, 1, 20),
    "1 IP, 5 sessions x 4 votes": (1, 5, 4),
    "1 IP, 20 sessions x 1 vote": (1, 20, 1),
    "10 IPs x 2 votes": (10, 1, 2),
    "10 IPs x 4 votes": (10, 1, 4),
    "10 IPs x 8 votes": (10, 1, 8),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--honest", type=int, default=24, help="honest voters (10 battles each)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, demo_arena(Path(tmp), seed=args.seed) as arena:
        for i in range(args.honest):
            honest_voter(arena, f"192.0.2.{i + 1}", 10, rng)
        for k, (label, (ips, sessions, votes)) in enumerate(SCENARIOS.items()):
            for ip in range(ips):
                for _ in range(sessions):
                    reroll_attacker(arena, f"198.{51 + k}.100.{ip + 1}", TARGET, votes, label)
        by_role = counted_by_role(arena)
        base = ratings(arena, roles={"honest"})
        s = arena.state.settings
        print(f"demo arena: {by_role['honest'][0]} honest votes ({by_role['honest'][0] - by_role['honest'][1]} withheld) from {args.honest} voters; "
              f"target {TARGET}, honest-only arena score {base[TARGET]:.1f} (mean 1000); defaults: {s.votes_per_day_session} votes/session/day, "
              f"{s.votes_per_day_ip}/IP/day, abandon ratio {s.abandon_ratio:g} after {s.abandon_min_battles} battles, selective alpha {s.selective_alpha:g}; "
              f"replay {time.perf_counter() - t0:.0f} s")
        header = ["scenario", "attack votes", "counted", "target score, no safeguards", "safeguards", "shift, no safeguards", "shift, safeguards"]
        rows = []
        for label in SCENARIOS:
            stored, counted = by_role.get(label, (0, 0))
            before = ratings(arena, roles={"honest", label})[TARGET]
            after = ratings(arena, roles={"honest", label}, counted_only=True)[TARGET]
            rows.append([label, str(stored), str(counted), f"{before:.1f}", f"{after:.1f}", f"{before - base[TARGET]:+.1f}", f"{after - base[TARGET]:+.1f}"])
        print_rows(header, rows)


if __name__ == "__main__":
    main()

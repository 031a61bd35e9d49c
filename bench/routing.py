"""The router benchmark (run by hand): every router on MMLU, GSM8K, MT-Bench (RouteLLM's files,
gpt-4-1106-preview vs Mixtral-8x7B-Instruct-v0.1, contaminated prompts left out) and
arena-bench-v1 (GPT-4 single grades; gpt-4-0314 vs Mixtral-8x7B-Instruct-v0.1), k-fold by prompt
(each prompt scored by a router that never saw it, trained on the other folds' gold labels or
judge grades), APGR and CPT(50%) with 95% bootstrap intervals over the test prompts, and
RouteLLM's published figure for the same model pair beside it (Ong et al. 2024, tables 2-4: best
router per benchmark, trained on arena + judge or gold data; different training data, so
compare with care).

    .venv/bin/python bench/routing.py [--folds 5] [--rounds 1000] [--routers ...] [--bench ...]

Arena battles (``--arena SOURCE``: a battle file with prompts, a dataset name such as
arena-human-preference-55k, or the arena database): for each benchmark of ``--arena-bench``
(default mt-bench and mmlu) every router is also trained on the battles alone ("arena", scored
on every benchmark prompt) and on the battles plus each fold's gold or judge labels ("arena +
gold", RouteLLM's augmentation), beside the same router trained on the benchmark's labels only
("gold"). Strong and weak sides of the battles: 10 tiers by ``--ratings`` (default: the
published 2024-08-13 arena scores) or by the battles' own Bradley-Terry scores
(``--ratings battles``); the strong tier is that of gpt-4-1106-preview, the weak one that of
Mixtral-8x7B (RouteLLM's sw_ranking looks them up the same way).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ratings as rb  # noqa: E402  (bench/ratings.py: the shared table printer)

from openarena.errors import DataError  # noqa: E402
from openarena.routing.battles import arena_battles, read_ratings, tier_pair  # noqa: E402
from openarena.routing.benchmark import route_eval  # noqa: E402
from openarena.routing.data import read_prompt_scores  # noqa: E402

SHARED = Path(os.environ.get("OPENARENA_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
BENCHES = {
    "mmlu": (SHARED / "routellm/routellm/evals/mmlu/responses", STRONG, WEAK),
    "gsm8k": (SHARED / "routellm/routellm/evals/gsm8k/gsm8k_responses.csv", STRONG, WEAK),
    "mt-bench": (SHARED / "routellm/routellm/evals/mt_bench/judgements.jsonl", STRONG, WEAK),
    "arena-bench-v1": (SHARED / "arena_hard_auto/data/arena-bench-v1/model_judgment", "gpt-4-0314", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
}
# RouteLLM (Ong et al. 2024): best published APGR and CPT(50%) per benchmark for this pair
PUBLISHED = {"mmlu": ("sw_ranking, arena + gold", 0.603, 0.354), "gsm8k": ("causal LLM, arena + judge", 0.622, 0.3364), "mt-bench": ("mf, arena + judge", 0.802, 0.134)}
ROUTERS = ["length", "difficulty", "classifier", "sw_ranking", "mf", "p2l"]
PUBLISHED_RATINGS = SHARED / "thurstone_models/results/tables/published_bt_20240813.csv"


def _cells(r) -> list[str]:
    return [f"{r.n_test:,}", f"{r.apgr:.3f} ({r.apgr_lower:.3f}-{r.apgr_upper:.3f})",
            "-" if r.cpt50 != r.cpt50 else f"{100 * r.cpt50:.1f}% ({100 * r.cpt50_lower:.1f}-{100 * r.cpt50_upper:.1f})"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--routers", nargs="+", default=ROUTERS)
    ap.add_argument("--bench", nargs="+", default=list(BENCHES))
    ap.add_argument("--arena", help="battles with prompts (file, dataset name, db or a database URL)")
    ap.add_argument("--arena-bench", nargs="+", default=["mt-bench", "mmlu"])
    ap.add_argument("--ratings", default=str(PUBLISHED_RATINGS), help="leaderboard CSV for the tiers, or 'battles'")
    args = ap.parse_args()
    rows = []
    t_all = time.perf_counter()
    battles = pair_of = None
    if args.arena:
        import openarena

        battles = arena_battles(openarena.read(args.arena))
        ratings = None if args.ratings == "battles" else read_ratings(args.ratings)
        pair_of = {}
    for name in args.bench:
        path, strong, weak = BENCHES[name]
        data = read_prompt_scores(path)
        done = {}
        for router in args.routers:
            t0 = time.perf_counter()
            res = route_eval(router, data, strong=strong, weak=weak, folds=args.folds, rounds=args.rounds)
            secs = time.perf_counter() - t0
            print(f"{name} {router}: APGR {res.results[router].apgr:.3f} ({secs:.0f} s)", file=sys.stderr, flush=True)
            for k, r in res.results.items():
                if k in done and k != router:
                    continue
                done[k] = r
                rows.append([name, k, "gold" if k not in ("random", "oracle", "length") else "-", *_cells(r), f"{secs:.0f}" if k == router else ""])
            if battles is not None and name in args.arena_bench and router not in ("random", "length"):
                if name not in pair_of:
                    pair_of[name] = tier_pair(battles, strong=strong, weak=weak, ratings=ratings)
                    print(f"{name} arena: {len(battles):,} battles; {pair_of[name].how}; strong {pair_of[name].strong_models}; weak {pair_of[name].weak_models}",
                          file=sys.stderr, flush=True)
                for label, kw in (("arena", dict(train=battles, test=data)), ("arena + gold", dict(train=data, arena=battles))):
                    t0 = time.perf_counter()
                    try:
                        res = route_eval(router, strong=strong, weak=weak, folds=args.folds, rounds=args.rounds, pair=pair_of[name], **kw)
                    except DataError as err:  # too few strong-vs-weak battles for this router
                        print(f"{name} {router} {label}: {err}", file=sys.stderr, flush=True)
                        rows.append([name, router, label, "", "not trained (too few strong-vs-weak battles)", "", ""])
                        continue
                    secs = time.perf_counter() - t0
                    r = res.results[router]
                    print(f"{name} {router} {label}: APGR {r.apgr:.3f} ({secs:.0f} s)", file=sys.stderr, flush=True)
                    rows.append([name, router, label, *_cells(r), f"{secs:.0f}"])
        if name in PUBLISHED:
            who, apgr, cpt = PUBLISHED[name]
            rows.append([name, f"RouteLLM published ({who})", "", "", f"{apgr:.3f}", f"{100 * cpt:.2f}%", ""])
    notes = [f"Router benchmark: {args.folds}-fold by prompt, {args.rounds} bootstrap resamples, 95% intervals; total {time.perf_counter() - t_all:.0f} s",
             "RouteLLM published rows: its best APGR / CPT(50%) for the same pair (Ong et al. 2024; its own training data)"]
    if battles is not None:
        notes.append(f"arena: {len(battles):,} battles with prompts from {args.arena} (dropped: {battles.dropped}); arena = trained on the battles only, "
                     f"scored on every benchmark prompt; arena + gold = each fold's labels plus the battles; tiers by "
                     + ("the battles' Bradley-Terry scores" if args.ratings == "battles" else Path(args.ratings).name))
    rb.print_table(notes, rows, cols=["benchmark", "router", "training data", "test prompts", "APGR (95% CI)", "CPT(50%) (95% CI)", "s"], right={3, 6})


if __name__ == "__main__":
    main()

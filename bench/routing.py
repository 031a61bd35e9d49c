"""The router benchmark (run by hand): every router on MMLU, GSM8K, MT-Bench (RouteLLM's files,
gpt-4-1106-preview vs Mixtral-8x7B-Instruct-v0.1, contaminated prompts left out) and
arena-bench-v1 (GPT-4 single grades; gpt-4-0314 vs Mixtral-8x7B-Instruct-v0.1), k-fold by prompt
(each prompt scored by a router that never saw it, trained on the other folds' gold labels or
judge grades), APGR and CPT(50%) with 95% bootstrap intervals over the test prompts, and
RouteLLM's published figure for the same model pair beside it (Ong et al. 2024, tables 2-4: best
router per benchmark, trained on arena + judge or gold data; different training data, so
compare with care).

    .venv/bin/python bench/routing.py [--folds 5] [--rounds 1000] [--routers ...] [--bench ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ratings as rb  # noqa: E402  (bench/ratings.py: the shared table printer)

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--routers", nargs="+", default=ROUTERS)
    ap.add_argument("--bench", nargs="+", default=list(BENCHES))
    args = ap.parse_args()
    rows = []
    t_all = time.perf_counter()
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
                rows.append([name, k, f"{r.n_test:,}", f"{r.apgr:.3f} ({r.apgr_lower:.3f}-{r.apgr_upper:.3f})",
                             "-" if r.cpt50 != r.cpt50 else f"{100 * r.cpt50:.1f}% ({100 * r.cpt50_lower:.1f}-{100 * r.cpt50_upper:.1f})",
                             f"{secs:.0f}" if k == router else ""])
        if name in PUBLISHED:
            who, apgr, cpt = PUBLISHED[name]
            rows.append([name, f"RouteLLM published ({who})", "", f"{apgr:.3f}", f"{100 * cpt:.2f}%", ""])
    rb.print_table([f"Router benchmark: {args.folds}-fold by prompt, {args.rounds} bootstrap resamples, 95% intervals; total {time.perf_counter() - t_all:.0f} s",
                    "RouteLLM published rows: its best APGR / CPT(50%) for the same pair (Ong et al. 2024; its own training data)"],
                   rows, cols=["benchmark", "router", "test prompts", "APGR (95% CI)", "CPT(50%) (95% CI)", "s"], right={2, 5})


if __name__ == "__main__":
    main()

"""Figures of the judging layer on the real data in ../shared/data (run by hand):

    .venv/bin/python bench/judge_figures.py [--shared ../shared]

1. the rating parser on the 4,800 GPT-4 gradings of arena-bench-v1 (exceptions with reasons);
2. the style metadata of the Arena-Hard-Auto v2.0 answers recomputed by openarena.data.style;
3. benchmark quality (separability, agreement, Spearman, Brier) of Arena-Hard, MT-Bench and
   AlpacaEval against the 20k-vote arena statistics, next to the published figures (LMSYS blog
   2024-04-19 Table 1, which used the full arena leaderboard of 2024-04 as reference) and the
   separability printed by arena-hard-auto's notebook/benchmark_statistics.ipynb.

The leaderboards of the judge battles come from the CLI:
    openarena leaderboard ../shared/data/arena_hard_auto/data/arena_hard_battles.jsonl
    openarena judge show  ../shared/data/arena_hard_auto/data/arena_hard_battles.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from openarena.judging.answer_records import answer_metadata
from openarena.judging.answers import read_answers
from openarena.judging.parse import parse_rating
from openarena.judging.quality import load_name_map, quality_table, read_bootstrap_stats

# LMSYS blog "From Live Data to High-Quality Benchmarks" (2024-04-19), Table 1 (20 top arena
# models, reference: Chatbot Arena English with 95% CI); lm-sys/lm-sys.github.io
# blog/2024-04-19-arena-hard.md. Brier 0.07 for Arena-Hard from its Table 4.
PUBLISHED = {
    "arena_hard": {"separability": 87.4, "agreement": 89.1, "spearman": 94.1, "brier": 0.07},
    "mt_bench": {"separability": 22.6, "agreement": 26.1, "spearman": 91.3},
    "alpaca_LC": {"separability": 83.2, "agreement": 81.2, "spearman": 90.8},
}
# notebook/benchmark_statistics.ipynb (arena-hard-auto commit bd52a78): separability printed
# for the same 20 models with the stored 95% bounds
NOTEBOOK_SEPARABILITY = {"arena_hard": 84.21, "mt_bench": 36.32, "alpaca_LC": 87.89, "alpaca": 71.05, "20k_votes": 68.95}


def parser_figures(data: Path) -> None:
    folder = data / "arena_hard_auto/data/arena-bench-v1/model_judgment"
    rows = [json.loads(x) for f in sorted(folder.glob("*.jsonl")) for x in f.read_text(encoding="utf-8").split("\n") if x.strip()]
    stored = [None if r["score"] is None else float(r["score"]) for r in rows]
    same_rule = sum(parse_rating(r["judgment"], "arena-bench-v1").value == s for r, s in zip(rows, stored))
    default = [parse_rating(r["judgment"]) for r in rows]
    agree = sum(p.value == s for p, s in zip(default, stored))
    print(f"1. Parser: {len(rows)} GPT-4 gradings in {len(list(folder.glob('*.jsonl')))} files")
    print(f"   rule of the script that wrote them (arena-bench-v1): {same_rule} / {len(rows)} equal the stored score "
          f"({sum(s is None for s in stored)} stored as null)")
    print(f"   default rule: {agree} / {len(rows)} equal; exceptions:")
    for (v, s), n in Counter((p.value, s) for p, s in zip(default, stored) if p.value != s).items():
        print(f"     {n} x parsed {v} where the stored score is {s} (decimal rating; the integer-only rule rejected it)")
    for reason, n in Counter(p.reason for p in default if not p.ok).most_common():
        print(f"     {n} x unparseable: {reason}")


def style_figures(data: Path) -> None:
    t0 = time.perf_counter()
    ans = read_answers(data / "arena_hard_auto/data/arena-hard-v2.0/model_answer")
    flat = [a for m in ans.values() for a in m.values()]
    keys = ("token_len", "header_count", "list_count", "bold_count")
    exact = sum(answer_metadata(a.turns) == {k: a.metadata[k] for k in keys} for a in flat)
    print(f"2. Style metadata of the v2.0 answers ({', '.join(f'{m} {len(v)}' for m, v in ans.items())}): "
          f"{exact} / {len(flat)} exactly equal (token_len with o200k_base, header/list/bold counts); "
          f"{time.perf_counter() - t0:.1f} s")


def quality_figures(data: Path) -> None:
    nb = data / "arena_hard_auto/notebook"
    ref = read_bootstrap_stats(nb / "bootstrap_stats_20k_votes.jsonl")
    items = [(read_bootstrap_stats(nb / f"bootstrap_stats_{b}.jsonl"), load_name_map(nb / f"{m}.json"))
             for b, m in (("arena_hard", "arena_to_arena_hard"), ("mt_bench", "arena_to_mt_bench"),
                          ("alpaca_LC", "alpaca_to_arena"), ("alpaca", "alpaca_to_arena"))]
    df = quality_table(items, ref)
    rows = []
    for r in df.itertuples():
        name = r.benchmark.replace(" (reference)", "")
        pub = PUBLISHED.get(name, {})
        rows.append({
            "benchmark": r.benchmark,
            "separability %": 100 * r.separability,
            "notebook %": NOTEBOOK_SEPARABILITY.get(name),
            "published %": pub.get("separability"),
            "agreement %": 100 * r.agreement,
            "agreement (nb rule) %": 100 * r.agreement_notebook,
            "published agr. %": pub.get("agreement"),
            "spearman %": 100 * r.spearman,
            "published sp. %": pub.get("spearman"),
            "brier": r.brier,
            "published brier": pub.get("brier"),
            "sep. all models %": 100 * r.separability_all,
            "models": r.models_all,
        })
    print("3. Benchmark quality vs the 20k-vote arena statistics (20 shared models, the files' 95% bounds);")
    print("   'notebook' = separability printed by arena-hard-auto's notebook for the same files; 'published' = LMSYS")
    print("   blog 2024-04-19 Table 1 (reference: the full English arena of 2024-04, not available here)")
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("OPENARENA_SHARED", str(Path(__file__).resolve().parents[1].parent / "shared")))
    data = Path(ap.parse_args().shared) / "data"
    parser_figures(data)
    style_figures(data)
    quality_figures(data)


if __name__ == "__main__":
    main()

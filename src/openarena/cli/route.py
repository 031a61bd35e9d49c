"""``openarena route``: routers trained on preference data, and the router benchmark."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from openarena.cli.common import err_console, fail, out_console, progress_bar, user_errors

app = typer.Typer(help="Routers trained on preference data (RouteLLM and P2L), and the router benchmark.", no_args_is_help=True)


class Format(str, Enum):
    """--format choices."""
    table = "table"
    json = "json"
    csv = "csv"


class RouterName(str, Enum):
    """--router choices."""
    random = "random"
    length = "length"
    difficulty = "difficulty"
    sw_ranking = "sw_ranking"
    mf = "mf"
    classifier = "classifier"
    p2l = "p2l"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


@app.command("eval")
def eval_cmd(
    router: RouterName = typer.Option(..., "--router", help="The router to train and evaluate."),
    train: Path = typer.Option(..., "--train", help="Training data: a correctness CSV or folder (RouteLLM format), MT-Bench judgements.jsonl, or a single-grade judgment folder."),
    test: Optional[Path] = typer.Option(None, "--test", help="Test data (same formats); without it, k-fold cross-validation by prompt on --train."),
    strong: Optional[str] = typer.Option(None, "--strong", help="The strong model (a column of the data); inferred for two-model data."),
    weak: Optional[str] = typer.Option(None, "--weak", help="The weak model."),
    folds: int = typer.Option(5, "--folds", help="Folds when there is no --test (2 to 20)."),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap resamples of the test prompts (10 to 10,000)."),
    seed: int = typer.Option(0, "--seed", help="Seed (>= 0)."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the result here."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also write the PGR curve (pgr.png, pgr.html) here."),
) -> None:
    """APGR, CPT(50%), CPT(80%) with bootstrap intervals, beside random, length and the oracle."""
    if not 2 <= folds <= 20:
        raise fail(f"--folds {folds}: expected 2 to 20")
    if not 10 <= rounds <= 10_000:
        raise fail(f"--rounds {rounds}: expected 10 to 10,000")
    if seed < 0:
        raise fail(f"--seed {seed}: expected a number >= 0")
    from openarena.routing.benchmark import plot_pgr, route_eval
    from openarena.routing.data import read_prompt_scores

    with user_errors():
        tr = read_prompt_scores(train)
        te = read_prompt_scores(test) if test is not None else None
        steps = 3 if te is not None else 3 * folds
        with progress_bar("training routers", steps) as advance:
            bench = route_eval(router.value, tr, te, strong=strong, weak=weak, folds=folds, rounds=rounds, seed=seed, progress=advance)
        main = bench.results[router.value].as_dict()
        doc = {k: main[k] for k in ("router", "apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt80", "n_test")}
        doc.update(cpt50_lower=main["cpt50_lower"], cpt50_upper=main["cpt50_upper"], cpt80_lower=main["cpt80_lower"], cpt80_upper=main["cpt80_upper"],
                   strong=bench.strong, weak=bench.weak, folds=bench.folds, dropped=bench.dropped,
                   baselines={k: {x: v.as_dict()[x] for x in ("apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt80")} for k, v in bench.results.items() if k != router.value})
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            plot_pgr(bench, str(out_dir / "pgr.png"), str(out_dir / "pgr.html"))
        if fmt == Format.json:
            text = json.dumps(doc, indent=1) + "\n"
        elif fmt == Format.csv:
            import pandas as pd

            cols = ["router", "apgr", "apgr_lower", "apgr_upper", "cpt50", "cpt50_lower", "cpt50_upper", "cpt80", "cpt80_lower", "cpt80_upper", "n_test"]
            text = pd.DataFrame([r for r in bench.rows()])[cols].to_csv(index=False, float_format="%.4f")
        else:
            text = None
        if text is not None:
            if output is not None:
                output.write_text(text, encoding="utf-8")
                err_console.print(f"wrote {output}", highlight=False)
            else:
                typer.echo(text, nl=False)
            return
    t = Table(title=f"Routing {bench.strong} vs {bench.weak}: {bench.n_test:,} test prompts" + (f" ({bench.folds}-fold)" if bench.folds > 1 else ""))
    for col in ("router", "APGR", "95% CI", "CPT(50%)", "CPT(80%)"):
        t.add_column(col, justify="left" if col == "router" else "right")
    for name, r in bench.results.items():
        t.add_row(name, f"{r.apgr:.3f}", f"{r.apgr_lower:.3f} to {r.apgr_upper:.3f}", _pct(r.as_dict()["cpt50"]), _pct(r.as_dict()["cpt80"]))
    out_console.print(t)
    if bench.dropped.get("contaminated"):
        err_console.print(f"{bench.dropped['contaminated']} contaminated prompts left out (RouteLLM's list)", highlight=False)

"""``openarena redteam``: the red-team arena's leaderboards (players, models, targets)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import err_console, fail, out_console, progress_bar, results_table, user_errors

app = typer.Typer(help="The red-team arena: players against models on targets, rated jointly.", no_args_is_help=True, rich_markup_mode="markdown")


class Format(str, Enum):
    """--format choices."""
    table = "table"
    csv = "csv"
    json = "json"


class CI(str, Enum):
    """--ci choices."""
    auto = "auto"
    sandwich = "sandwich"
    bootstrap = "bootstrap"
    none = "none"


def _prior(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise fail(f"--player-prior {text!r}: expected 'auto' or a number >= 0 (1 / sd^2 in logits)") from None
    if not (value >= 0 and value != float("inf")):
        raise fail(f"--player-prior {text!r}: expected 'auto' or a finite number >= 0")
    return value


@app.command("leaderboard")
def leaderboard(
    source: str = typer.Argument(..., help="A rounds file (.csv or .parquet: player, model, target, outcome = win|loss for the player[, tstamp]), or 'db' / a database URL for the arena's own rounds."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of the terminal."),
    ci: CI = typer.Option(CI.auto, "--ci", help="auto: posterior quantiles for players, sandwich for models and targets; sandwich; bootstrap; none."),
    level: float = typer.Option(0.95, "--level", help="Confidence level, strictly between 0 and 1."),
    rounds: int = typer.Option(100, "--rounds", help="Bootstrap resamples (with --ci bootstrap), 1 to 10,000."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (>= 0)."),
    player_prior: str = typer.Option("auto", "--player-prior", help="'auto' (empirical Bayes) or 1/sd^2 of the prior on player skills; 0 = maximum likelihood."),
    online: bool = typer.Option(False, "--online", help="One pass of online logistic regression in time order (the live estimate; no intervals)."),
    top: int = typer.Option(0, "--top", help="Show only the first N rows of each board in the table (0 = all)."),
) -> None:
    """Players (skill), models (robustness) and targets (difficulty) from one extended Bradley-Terry fit, with intervals and round counts."""
    if not 0 < level < 1:
        raise fail(f"--level {level}: expected a number strictly between 0 and 1")
    if not 1 <= rounds <= 10_000:
        raise fail(f"--rounds {rounds}: expected 1 to 10,000")
    if seed < 0:
        raise fail(f"--seed {seed}: expected a number >= 0")
    prior = _prior(player_prior)
    from openarena.api import redteam_leaderboard  # a file, `db` or a database URL

    with user_errors():
        with progress_bar("bootstrap", rounds if ci == CI.bootstrap else 0) as advance:
            board = redteam_leaderboard(source, ci=ci.value, level=level, player_prior=prior, bootstrap_rounds=rounds, seed=seed, online=online, progress=advance)
        if fmt == Format.csv:
            text = board.to_csv()
        elif fmt == Format.json:
            text = board.to_json() + "\n"
        else:
            text = None
        if output is not None and text is not None:
            output.write_text(text, encoding="utf-8")
            err_console.print(f"wrote {output}", highlight=False)
            return
        if text is not None:
            typer.echo(text, nl=False)
            return
        _print_tables(board, top)
        if output is not None:
            output.write_text(board.to_csv(), encoding="utf-8")



@app.command("export")
def export(
    output: Path = typer.Option(..., "-o", "--output", help="A .csv or .parquet file."),
    db: str = typer.Option("db", "--db", help="'db' (the configured database) or a database URL."),
) -> None:
    """Write the arena's ended red-team rounds (player handle, model, target, outcome, turns, times) to a file that `redteam leaderboard` reads."""
    from openarena.storage.db import open_database
    from openarena.storage.rounds import round_rows

    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise fail(f"-o {output}: expected a .csv or .parquet file")
    with user_errors():
        rows = round_rows(open_database(None if db == "db" else db, create=False, run_migrations=False, checkpoints=False))
        frame = rows.rename(columns={"handle": "player", "id": "round_id", "ended_at": "tstamp"})
        frame["outcome"] = (frame["status"] == "won").map({True: "win", False: "loss"})
        frame = frame.drop(columns=["player_hash", "lease_until", "version"], errors="ignore")
        if suffix == ".csv":
            frame.to_csv(output, index=False)
        else:
            frame.to_parquet(output, index=False)
    err_console.print(f"wrote {len(frame):,} rounds to {output}", highlight=False)


def _print_tables(board, top: int) -> None:
    opts = board.options
    titles = {"player": "Players (skill)", "model": "Models (robustness)", "target": "Targets (difficulty)"}
    for kind in ("player", "model", "target"):
        rows = board.board(kind)
        if top:
            rows = rows.head(top)
        t = results_table(titles[kind], ("rank", "name", "rating", "95% CI", "rounds"))
        for k, r in enumerate(rows.itertuples(index=False), start=1):
            ci = "" if r.rating_q025 != r.rating_q025 else f"{r.rating_q025:.0f} to {r.rating_q975:.0f}"
            t.add_row(str(k), r.name, f"{r.rating:.0f}", ci, str(r.num_rounds))
        out_console.print(t)
    note = f"method {opts['method']}, intervals: {opts.get('interval', 'none')}"
    if opts.get("player_prior_sd_logits"):
        note += f", player prior sd {opts['player_prior_sd_logits']:.3f} logits (empirical Bayes)"
    if opts.get("failed_resamples"):
        note += f", {opts['failed_resamples']} bootstrap resamples had no finite estimate and were left out"
    err_console.print(note, highlight=False)

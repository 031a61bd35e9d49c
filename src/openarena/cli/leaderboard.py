"""``openarena leaderboard SOURCE``: battles in, leaderboard out."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from openarena.cli.common import err_console, fail, out_console, progress_bar, user_errors


class CI(str, Enum):
    sandwich = "sandwich"
    bootstrap = "bootstrap"
    none = "none"


class Ties(str, Enum):
    half = "half"
    rao_kupper = "rao-kupper"
    davidson = "davidson"


class Rating(str, Enum):
    bt = "bt"
    elo = "elo"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"
    html = "html"


def parse_aliases(items: list[str]) -> dict[str, str]:
    """['OLD=NEW', ...] -> {OLD: NEW}; raises typer.Exit(2) on a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise fail(f"--alias {item!r}: expected OLD=NEW, e.g. chatgpt-4o-latest=chatgpt-4o-latest-2024-08-08")
        out[old.strip()] = new.strip()
    return out


def load_battles(source: str, *, anony: bool, dedup: bool, since: str | None, until: str | None, exclude: list[str], min_battles: int, aliases: dict[str, str], quiet: bool):
    """Resolve SOURCE (path, registry name or hf://datasets/...), read it and apply filters.
    Prints what each filter removed to stderr unless ``quiet``."""
    from openarena.data.filters import apply_filters
    from openarena.data.readers import read_battles
    from openarena.data.registry import resolve

    if source == "db" or source.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
        from openarena.storage import Database
        from openarena.storage.battles import read_battles as read_db_battles

        data = read_db_battles(Database.open(None if source == "db" else source, run_migrations=False), conversations=False)
    else:
        data = read_battles(resolve(source))
    n_before = len(data.steps)
    data = apply_filters(
        data,
        anony_only=anony,
        dedup=dedup,
        since=since,
        until=until,
        exclude=tuple(exclude),
        min_battles=min_battles,
        aliases=aliases or None,
    )
    if not quiet:
        for step in list(data.steps)[n_before:]:
            detail = f" ({step.detail})" if step.detail else ""
            err_console.print(f"filter {step.name}: removed {step.removed:,.0f}, kept {step.remaining:,.0f}{detail}", highlight=False)
    return data


def print_table(lb, top: int | None) -> None:
    from openarena.analysis.report import display_frame

    d = display_frame(lb)
    if top:
        d = d.head(top)
    t = Table(title=f"{'Bradley-Terry' if lb.rating_system == 'bt' else 'Online Elo'} leaderboard ({lb.provenance['n_battles']:,.0f} votes, anchor {lb.anchor.describe()})")
    for col in d.columns:
        t.add_column(col, justify="left" if col == "Model" else "right")
    for row in d.itertuples(index=False):
        t.add_row(*map(str, row))
    out_console.print(t)
    if lb.tie_param is not None:
        out_console.print(f"tie parameter ({lb.ties}): {lb.tie_param:.4f}")


def leaderboard(
    source: str = typer.Argument(..., help="Battle file (clean_battle JSON/JSONL, CSV, Parquet, pair counts JSON), a registry name (see `openarena datasets`), hf://datasets/OWNER/NAME, or the arena's votes: `db` ($OPENARENA_DATABASE_URL or ./arena-data) or a database URL."),
    ci: CI = typer.Option(CI.sandwich, "--ci", help="Confidence intervals: sandwich (robust CLT), bootstrap or none."),
    rounds: int = typer.Option(100, "--rounds", min=1, help="Bootstrap rounds."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    anchor: Optional[str] = typer.Option(None, "--anchor", help="MODEL=VALUE pins a model's rating (default mixtral-8x7b-instruct-v0.1=1114 when present, else mean=1000)."),
    ties: Ties = typer.Option(Ties.half, "--ties", help="Ties as half wins, or the Rao-Kupper / Davidson tie model."),
    rating: Rating = typer.Option(Rating.bt, "--rating", help="bt (Bradley-Terry MLE) or elo (online Elo, K=4)."),
    alias: list[str] = typer.Option([], "--alias", help="OLD=NEW model renaming; repeatable."),
    exclude: list[str] = typer.Option([], "--exclude", help="Model to leave out; repeatable."),
    min_battles: int = typer.Option(0, "--min-battles", min=0, help="Drop models with fewer votes."),
    anony: bool = typer.Option(False, "--anony", help="Anonymous battles only (rows with an `anony` column)."),
    dedup: bool = typer.Option(False, "--dedup", help="Keep dedup_tag.sampled battles only."),
    since: Optional[str] = typer.Option(None, "--since", help="Keep votes at or after this UTC date/time (ISO)."),
    until: Optional[str] = typer.Option(None, "--until", help="Keep votes before this UTC date/time (ISO)."),
    level: float = typer.Option(0.95, "--level", help="Interval coverage."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the output here instead of stdout."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Also write leaderboard.csv/.json/.html and the CI plot here."),
    top: Optional[int] = typer.Option(None, "--top", min=1, help="Show only the first N rows in the terminal table."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="Bootstrap workers (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No filter report or progress bar."),
) -> None:
    """Build the leaderboard of SOURCE: Bradley-Terry ratings on the Elo scale with confidence
    intervals and rank (UB)."""
    from openarena.analysis.leaderboard import build_leaderboard
    from openarena.analysis.report import render, write_outputs

    aliases = parse_aliases(alias)
    with user_errors():
        data = load_battles(source, anony=anony, dedup=dedup, since=since, until=until, exclude=exclude, min_battles=min_battles, aliases=aliases, quiet=quiet)
        with progress_bar("bootstrap", rounds if ci == CI.bootstrap else 0, enabled=not quiet) as advance:
            lb = build_leaderboard(
                data,
                rating=rating.value,
                ties=ties.value,
                ci=ci.value,
                rounds=rounds,
                seed=seed,
                anchor=anchor,
                level=level,
                n_jobs=jobs,
                progress=advance,
            )
        if out_dir is not None:
            paths = write_outputs(lb, out_dir)
            if not quiet:
                for kind, p in paths.items():
                    err_console.print(f"wrote {kind}: {p}", highlight=False)
        if fmt == Format.table and output is None:
            print_table(lb, top)
            return
        text = render(lb, "csv" if fmt == Format.table else fmt.value)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text)
            if not quiet:
                err_console.print(f"wrote {output}", highlight=False)
        else:
            typer.echo(text, nl=False)

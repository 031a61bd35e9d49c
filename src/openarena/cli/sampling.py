"""``openarena sampling simulate``: vote-budget planning for an arena's sampling policy."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import out_console, progress_bar, results_table, user_errors

app = typer.Typer(help="Pair-sampling policies: simulate an arena to plan its vote budget.", no_args_is_help=True, rich_markup_mode="markdown")


class Format(str, Enum):
    """--format choices."""

    table = "table"
    json = "json"


@app.command("simulate")
def simulate(
    strengths: Path = typer.Option(..., "--strengths", help="CSV with columns model,rating (Elo scale), optionally weight and vote_target (e.g. a leaderboard CSV)."),
    policy: str = typer.Option("targeted", "--policy", help="fastchat | uniform | active (the Chatbot Arena paper's rule) | targeted."),
    compare: bool = typer.Option(False, "--compare", help="Run every policy on the same seeds."),
    target_halfwidth: float = typer.Option(10.0, "--target-halfwidth", help="Stop when the widest 95% interval (or --new-model's) is below +- this many Elo points."),
    votes_per_refit: int = typer.Option(100, "--votes-per-refit", min=1, help="Votes between two leaderboard refits (the server's refresh)."),
    seed: int = typer.Option(0, "--seed", help="First seed."),
    seeds: int = typer.Option(10, "--seeds", min=1, help="Simulated arenas (seeds seed, seed+1, ...); medians are reported."),
    new_model: Optional[str] = typer.Option(None, "--new-model", help="A model of the file that joins an arena of the others: count the votes until its own interval is below the target."),
    history: int = typer.Option(50_000, "--history", min=0, help="With --new-model: votes already collected (uniformly) among the other models."),
    explore: float = typer.Option(0.2, "--explore", min=0.0, max=1.0, help="Share of the fastchat distribution mixed into active and targeted."),
    max_votes: int = typer.Option(2_000_000, "--max-votes", min=1, help="Give up after this many votes."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """Simulate the arena with the given true strengths under a sampling policy and print the
    votes needed until the widest 95% sandwich interval (or --new-model's) is below the target."""
    from dataclasses import replace

    from openarena.analysis.policies import POLICIES
    from openarena.analysis.vote_budget import expected_votes, read_strengths, simulate_policy
    from openarena.errors import OpenArenaError

    with user_errors():
        if not compare and policy not in POLICIES:
            raise OpenArenaError(f"--policy {policy!r}: expected one of {', '.join(POLICIES)}")
        if not (target_halfwidth > 0 and target_halfwidth < float("inf")):
            raise OpenArenaError(f"--target-halfwidth {target_halfwidth}: expected a positive number of Elo points")
        if max_votes < votes_per_refit:
            raise OpenArenaError(f"--max-votes {max_votes} is below --votes-per-refit {votes_per_refit}")
        spec = replace(read_strengths(str(strengths)), explore=explore)
        if new_model is not None and new_model not in spec.models:
            raise OpenArenaError(f"--new-model {new_model!r} is not a model of {strengths}")
        policies = list(POLICIES) if compare else [policy]
        guess = min(max_votes, 1.3 * expected_votes(spec, target_halfwidth))
        results = []
        with progress_bar("simulating", guess * len(policies)) as advance:
            for name in policies:
                done = [0]

                def step(v: int) -> None:
                    if done[0] + v <= guess:  # the bar is an estimate: it stops at its end
                        advance(v)
                    done[0] += v

                res = simulate_policy(
                    spec, name, seeds=range(seed, seed + seeds), target_halfwidth=target_halfwidth,
                    votes_per_refit=votes_per_refit, max_votes=max_votes, new_model=new_model,
                    history=history if new_model else 0, progress=step,
                )
                advance(max(0.0, guess - done[0]))
                results.append(res.summary())
    if fmt == Format.json:
        typer.echo(json.dumps(results if compare else results[0], indent=2))
        return
    what = f"{new_model}'s interval" if new_model else "the widest interval"
    t = results_table(f"Votes until {what} is below +-{target_halfwidth:g} points ({len(spec.models)} models, median of {seeds} seed{'s' if seeds > 1 else ''}, refit every {votes_per_refit} votes)", ("policy", "votes", "widest +-", "median +-", "votes, median below target", "uniform / policy votes"))
    base = next((r["votes_to_target"] for r in results if r["policy"] == "uniform"), None)
    for r in results:
        v = r["votes_to_target"]
        ratio = f"{base / v:.2f}" if base and v else ""
        t.add_row(
            r["policy"], f"{v:,.0f}" if v is not None else f"> {max_votes:,} ({r['reached']}/{r['seeds']} reached)",
            f"{r['max_halfwidth']:.1f}", f"{r['median_halfwidth']:.1f}",
            f"{r['votes_to_median_target']:,.0f}" if r["votes_to_median_target"] is not None else "", ratio,
        )
    out_console.print(t)

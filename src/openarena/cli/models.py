"""``openarena models check``: ping every endpoint of a registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.table import Table

from openarena.cli.common import out_console, user_errors
# openarena.demo is light (a path and a lazy starter): importing openarena.providers.registry
# (pydantic models, yaml) at start-up would cost every command, e.g. `openarena leaderboard small.csv`
from openarena.demo import DEMO_REGISTRY

app = typer.Typer(help="The model registry.", no_args_is_help=True)


@app.command("check")
def check(
    registry: Path = typer.Argument(DEMO_REGISTRY, help="Model registry YAML."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds per ping."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Pings in flight."),
    demo: bool = typer.Option(False, "--demo", help="Start the demo mock server first (for the demo registry)."),
) -> None:
    """Ping each model (one 1-token completion) and print a table. A model that fails is pinged
    once more, as the arena's client retries a failed call: one that answers then is shown as
    'yes (on retry)' with its first error (a flaky endpoint, e.g. the demo's demo-flaky, which
    fails its first call on purpose). Exit status 1 if any model failed twice."""
    from openarena.providers.client import map_bounded, ping
    from openarena.providers.registry import load_registry

    mock = None
    with user_errors():
        if demo:
            from openarena.demo import start_demo_models

            mock = start_demo_models()
        try:
            reg = load_registry(registry)
            models = reg.models()
            results = asyncio.run(map_bounded(lambda m: ping(m, timeout_s=timeout), models, concurrency))
            failed = [i for i, r in enumerate(results) if not r.ok]
            again = asyncio.run(map_bounded(lambda m: ping(m, timeout_s=timeout), [models[i] for i in failed], concurrency)) if failed else []
            retried = {i: r for i, r in zip(failed, again)}
        finally:
            if mock is not None:
                mock.stop()
    t = Table(title=f"{registry}: {len(models)} models")
    for col in ("model", "endpoint", "ok", "latency", "error"):
        t.add_column(col)
    bad = 0
    for i, (m, r) in enumerate(zip(models, results)):
        second = retried.get(i)
        if second is not None and second.ok:
            t.add_row(m.name, m.base_url, "[yellow]yes (on retry)[/]", f"{second.latency_s * 1000:.0f} ms", f"first call failed: {r.error or ''}")
            continue
        r = second or r
        bad += not r.ok
        t.add_row(m.name, m.base_url, "[green]yes[/]" if r.ok else "[red]no[/]", f"{r.latency_s * 1000:.0f} ms", r.error or "")
    out_console.print(t)
    if bad:
        raise typer.Exit(1)

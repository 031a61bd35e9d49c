"""``openarena datasets``: the named public datasets the registry knows."""

from __future__ import annotations

from rich.table import Table

from openarena.cli.common import out_console, user_errors


def datasets() -> None:
    """List the named datasets that SOURCE accepts, with where they are fetched from."""
    from openarena.data.registry import list_datasets

    with user_errors():
        t = Table(title="Datasets (use the name as SOURCE)")
        t.add_column("name", no_wrap=True, overflow="fold")
        for col in ("votes", "description", "sources"):
            t.add_column(col)
        for spec in list_datasets():
            t.add_row(spec.name, getattr(spec, "votes", "") and f"{spec.votes:,}", spec.description, ", ".join(s.describe() for s in spec.sources))
        out_console.print(t)

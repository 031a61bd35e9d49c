"""``openarena datasets``: the named public datasets the registry knows."""

from __future__ import annotations


from openarena.cli.common import out_console, results_table, user_errors


def datasets() -> None:
    """List the named datasets that SOURCE accepts, with where they are fetched from."""
    from openarena.data.registry import list_datasets

    with user_errors():
        t = results_table("Datasets (use the name as SOURCE)", ("name", "votes", "description", "sources"))
        for spec in list_datasets():
            t.add_row(spec.name, getattr(spec, "votes", "") and f"{spec.votes:,}", spec.description, ", ".join(s.describe() for s in spec.sources))
        out_console.print(t)

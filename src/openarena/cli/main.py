"""The ``openarena`` command line tool: one sub-command (or group) per module of this package."""

from __future__ import annotations

import typer

from openarena import __version__
from openarena.cli import curation, datasets, leaderboard
from openarena.cli import export as export_cmd
from openarena.cli import judge as judge_cmd
from openarena.cli import models as models_cmd
from openarena.cli import serve as serve_cmd

app = typer.Typer(
    name="openarena",
    help="OpenArena: a self-hostable Chatbot Arena. Battles in, Bradley-Terry leaderboards out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("leaderboard")(leaderboard.leaderboard)
app.command("datasets")(datasets.datasets)
app.command("tag")(curation.tag)
app.command("curate")(curation.curate)
app.command("voters")(curation.voters)
app.command("release")(curation.release)
app.command("serve")(serve_cmd.serve)
app.command("export")(export_cmd.export)
app.add_typer(models_cmd.app, name="models")
app.add_typer(judge_cmd.app, name="judge")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"openarena {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """OpenArena command line."""


if __name__ == "__main__":  # pragma: no cover
    app()

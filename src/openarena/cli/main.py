"""The ``openarena`` command line tool: one sub-command (or group) per module of this package."""

from __future__ import annotations

import typer

from openarena import __version__
from openarena.cli import curation, datasets, leaderboard
from openarena.cli import export as export_cmd
from openarena.cli import judge as judge_cmd
from openarena.cli import models as models_cmd
from openarena.cli import redteam as redteam_cmd
from openarena.cli import route as route_cmd
from openarena.cli import serve as serve_cmd
from openarena.cli import trust as trust_cmd
from openarena.cli import sampling as sampling_cmd

app = typer.Typer(
    name="openarena",
    help="OpenArena: a self-hostable Chatbot Arena. Battles in, Bradley-Terry leaderboards out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings are wrapped to the terminal, `code` shown as code
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
app.add_typer(redteam_cmd.app, name="redteam")
app.add_typer(trust_cmd.app, name="trust")
app.command("snapshot")(trust_cmd.snapshot)
app.command("verify")(trust_cmd.verify)
app.add_typer(sampling_cmd.app, name="sampling")
app.add_typer(route_cmd.app, name="route")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"openarena {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """OpenArena command line."""


def run(argv: list[str] | None = None) -> None:
    """The ``openarena`` executable: the typer app, with usage errors (a bad option value, a
    missing argument, an unknown command) printed as one ``error:`` line and exit status 2,
    like bad input."""
    import sys

    from openarena.cli.common import err_console

    import warnings

    def one_line(message, category, filename, lineno, file=None, line=None):  # no paths or source lines for users
        if issubclass(category, UserWarning) and not issubclass(category, (DeprecationWarning, FutureWarning)):
            err_console.print(f"note: {str(message).splitlines()[0]}", highlight=False)

    warnings.showwarning = one_line  # library warnings meant for people become one note line; numeric ones stay quiet
    usage_error = typer.BadParameter.__mro__[1]  # click's UsageError, as vendored by typer
    click_error = typer.BadParameter.__mro__[2]  # click's ClickException
    try:
        code = app(args=argv, standalone_mode=False)
    except usage_error as err:
        ctx = getattr(err, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(f"[bold red]error:[/] {err.format_message()}{hint}", highlight=False)
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click_error as err:
        err_console.print(f"[bold red]error:[/] {err.format_message()}", highlight=False)
        sys.exit(err.exit_code)
    except ModuleNotFoundError as err:
        extra = MISSING_EXTRA.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        from rich.markup import escape

        err_console.print("[bold red]error:[/] " + escape(f"this command needs {err.name}, part of the {extra!r} extra: pip install 'openarena[{extra}]'"), highlight=False)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


#: optional dependency -> the extra of pyproject.toml that installs it
MISSING_EXTRA = {
    "fastapi": "serve", "uvicorn": "serve", "jinja2": "serve", "markdown_it": "serve", "nh3": "serve", "itsdangerous": "serve",
    "sqlalchemy": "db", "alembic": "db", "psycopg": "db", "openai": "judge", "anyio": "judge",
}


if __name__ == "__main__":  # pragma: no cover
    run()

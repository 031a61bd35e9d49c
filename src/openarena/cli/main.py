"""The ``openarena`` command line tool: one sub-command (or group) per module of this package."""

from __future__ import annotations

import importlib

import typer

from openarena import __version__

#: command name -> (module of openarena.cli, attribute, 'command' | 'group'), in --help order.
#: A run imports the module of the command it runs only (a CSV leaderboard does not import the
#: judge, the server or the trust tools, nor build their parameters): see :func:`build_app`.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "leaderboard": ("leaderboard", "leaderboard", "command"),
    "datasets": ("datasets", "datasets", "command"),
    "tag": ("curation", "tag", "command"),
    "curate": ("curation", "curate", "command"),
    "voters": ("curation", "voters", "command"),
    "release": ("curation", "release", "command"),
    "serve": ("serve", "serve", "command"),
    "export": ("export", "export", "command"),
    "models": ("models", "app", "group"),
    "judge": ("judge", "app", "group"),
    "redteam": ("redteam", "app", "group"),
    "trust": ("trust", "app", "group"),
    "snapshot": ("trust", "snapshot", "command"),
    "verify": ("trust", "verify", "command"),
    "sampling": ("sampling", "app", "group"),
    "route": ("route", "app", "group"),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The typer app with every command, or with command ``only`` (a name of :data:`COMMANDS`):
    the same command objects either way, so a command behaves the same in both."""
    app = typer.Typer(
        name="openarena",
        help="OpenArena: a self-hostable Chatbot Arena. Battles in, Bradley-Terry leaderboards out.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",  # docstrings are wrapped to the terminal, `code` shown as code
    )
    for name, (module, attr, kind) in COMMANDS.items():
        if only is not None and name != only:
            continue
        obj = getattr(importlib.import_module(f"openarena.cli.{module}"), attr)
        if kind == "group":
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)
    app.callback()(main)
    return app


def __getattr__(name: str):
    if name == "app":  # the full app (tests, documentation), built on first use
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"openarena {__version__}")
        raise typer.Exit()


def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """OpenArena command line."""


def run(argv: list[str] | None = None) -> None:
    """The ``openarena`` executable: the typer app, with usage errors (a bad option value, a
    missing argument, an unknown command) printed as one ``error:`` line and exit status 2,
    like bad input."""
    import sys

    from openarena.cli.common import err_console

    import warnings

    shown: set[str] = set()

    def one_line(message, category, filename, lineno, file=None, line=None):  # no paths or source lines for users
        if issubclass(category, UserWarning) and not issubclass(category, (DeprecationWarning, FutureWarning)):
            text = str(message).splitlines()[0]
            if text not in shown:  # once per run, however many boards (categories, bootstrap chunks) raise it
                shown.add(text)
                err_console.print(f"note: {text}", highlight=False)

    warnings.showwarning = one_line  # library warnings meant for people become one note line; numeric ones stay quiet
    usage_error = typer.BadParameter.__mro__[1]  # click's UsageError, as vendored by typer
    click_error = typer.BadParameter.__mro__[2]  # click's ClickException
    args = sys.argv[1:] if argv is None else list(argv)
    command = args[0] if args and args[0] in COMMANDS else None  # else the full app (help, errors)
    app = build_app(command) if command else build_app()
    try:
        code = app(args=args, prog_name="openarena", standalone_mode=False)
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

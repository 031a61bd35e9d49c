"""``openarena export``: the arena's votes in public formats."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from openarena.cli.common import err_console, user_errors


class ExportFormat(str, Enum):
    """--format choices of ``openarena export``."""
    clean_battle = "clean_battle"
    jsonl = "jsonl"
    parquet = "parquet"
    csv = "csv"


#: the format a file name asks for when --format is not given
EXTENSION_FORMATS = {".jsonl": ExportFormat.jsonl, ".parquet": ExportFormat.parquet, ".csv": ExportFormat.csv, ".json": ExportFormat.clean_battle}


def export(
    output: Path = typer.Argument(..., help="File to write."),
    fmt: Optional[ExportFormat] = typer.Option(None, "--format", "-f", help="clean_battle (FastChat JSON list), jsonl, parquet, csv (no conversations). Default: from OUTPUT's extension (.jsonl, .parquet, .csv), else clean_battle."),
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (default: $OPENARENA_DATABASE_URL, else SQLite in --data-dir)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder of the SQLite database (default: $OPENARENA_DATA_DIR or ./arena-data)."),
    include_uncounted: bool = typer.Option(False, "--include-uncounted", help="Also export votes marked not counted (identity leaks), with counted/reason columns."),
    anony_only: bool = typer.Option(False, "--anony-only", help="Only anonymous battles."),
) -> None:
    """Write the stored votes (one row per vote, both conversations) to OUTPUT, as stored.

    For a public release (PII scrubbed, salted voter hashes, data card) use
    `openarena release db --out-dir DIR` instead."""
    from openarena.storage import Database
    from openarena.storage.export import export_battles

    if fmt is None:
        fmt = EXTENSION_FORMATS.get(output.suffix.lower(), ExportFormat.clean_battle)
    with user_errors():
        database = Database.open(db, data_dir, run_migrations=False)
        n = export_battles(database, output, fmt.value, include_uncounted=include_uncounted, include_named=not anony_only)
    err_console.print(f"wrote {n:,} votes to {output} ({fmt.value})", highlight=False)

"""The image store of the vision arena: re-encoded images (:mod:`openarena.serving.images`)
kept content-addressed in a folder, by default ``images/`` beside the SQLite database (or in
the data folder for a PostgreSQL arena; ``--image-dir`` elsewhere).

A file's name is the SHA-256 of its bytes (``<folder>/ab/abcdef....``, two-character fan-out),
so the same image uploaded twice is stored once, a stored file can be checked against its name,
and a battle's conversation refers to its images by hash only (``{"role": "user", "content":
..., "images": ["<sha256>"]}``): the public release publishes the hashes, never the files
(:mod:`openarena.data.release`).

Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a reader never
sees half an image and two workers writing the same image end with one whole file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from openarena.storage.db import StorageError

__all__ = ["ImageStore", "default_image_dir", "record_image", "sniff_mime", "stored_bytes"]

_SHA = re.compile(r"^[0-9a-f]{64}$")


def sniff_mime(data: bytes) -> str:
    """'image/png', 'image/jpeg', 'image/webp', 'image/gif' from the magic bytes, else
    'application/octet-stream'."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "application/octet-stream"


def default_image_dir(database_url: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder beside the database: ``<folder of the SQLite file>/images``; for another
    database, ``<data_dir>/images`` (data_dir default: the arena's data folder)."""
    from openarena.storage.db import DEFAULT_DATA_DIR, ENV_DATA_DIR

    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:" and not path.startswith("file:"):
            return Path(path).expanduser().resolve().parent / "images"
    folder = Path(data_dir or os.environ.get(ENV_DATA_DIR, "") or DEFAULT_DATA_DIR).expanduser()
    return folder / "images"


class ImageStore:
    """Content-addressed image files in ``folder`` (created on the first write).

    Raises (every method): StorageError, one line, when the folder cannot be written or read.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str) -> Path:
        """Where the image of ``sha256`` lives. Raises: ValueError for a string that is not a
        lowercase hex SHA-256 (so no caller can build a path out of the folder)."""
        if not isinstance(sha256, str) or not _SHA.match(sha256):
            raise ValueError("an image address is 64 lowercase hexadecimal characters")
        return self.folder / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its SHA-256 (hex). Idempotent."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists():
            return sha
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            raise StorageError(f"cannot write to the image folder {self.folder}: {e.strerror or type(e).__name__}") from None
        return sha

    def get(self, sha256: str) -> bytes | None:
        """The bytes stored under ``sha256``, or None when there is no such image."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"cannot read the image folder {self.folder}: {e.strerror or type(e).__name__}") from None

    def total_bytes(self) -> int:
        """The bytes of every stored image (a walk of the folder; the server uses the
        ``images`` table instead, :func:`stored_bytes`)."""
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("??/*") if _SHA.match(p.name))

    def __contains__(self, sha256: object) -> bool:
        try:
            return isinstance(sha256, str) and self.path(sha256).is_file()
        except ValueError:
            return False


def record_image(db, sha256: str, mime: str, width: int, height: int, n_bytes: int, now: float | None = None) -> bool:
    """Add the ``images`` row of a stored image (its first upload); True when it is new, False
    when the image was known already. Raises: SQLAlchemyError / StorageError when the database
    cannot be written."""
    import time

    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from openarena.storage.models import Image

    table = Image.__table__
    with db.read() as conn:
        if conn.execute(select(table.c.sha256).where(table.c.sha256 == sha256)).first() is not None:
            return False
    try:
        with db.write() as conn:
            conn.execute(table.insert().values(sha256=sha256, mime=mime, width=int(width), height=int(height), n_bytes=int(n_bytes),
                                               created_at=time.time() if now is None else now))
    except IntegrityError:  # another worker stored it first
        return False
    return True


def stored_bytes(db) -> int:
    """The total size in bytes of the images recorded in the ``images`` table (what every
    worker has stored). Raises: SQLAlchemyError when the database cannot be read."""
    from sqlalchemy import func, select

    from openarena.storage.models import Image

    table = Image.__table__
    with db.read() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(table.c.n_bytes), 0))).scalar_one())

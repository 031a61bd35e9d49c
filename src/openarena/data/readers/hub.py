"""Battle data from a Hugging Face hub dataset: ``hf://datasets/OWNER/NAME[@REVISION][/PATH]``.

* ``hf://datasets/lmarena-ai/arena-human-preference-140k``: every data file of the dataset
  (``*.parquet``, ``*.jsonl``, ``*.json``, ``*.csv``) via ``huggingface_hub.snapshot_download``
  with those ``allow_patterns``.
* ``.../NAME/train.csv``: that one file via ``huggingface_hub.hf_hub_download``.
* ``.../NAME/data/arena-*``: a glob (``* ? [``) is passed as ``allow_patterns``.
* ``@REVISION`` (branch, tag or commit; URL-quote a '/' as %2F, as HfFileSystem does) after the
  name pins a revision, e.g. ``hf://datasets/OWNER/NAME@refs%2Fconvert%2Fparquet/default``.

Files land in the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``) and are read with the
local readers; several files are concatenated (see :func:`openarena.data.readers._common.combine`).
Gated datasets need a token (``hf auth login`` or ``HF_TOKEN``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from openarena.errors import DataError, OpenArenaError, SourceUnavailable

HF_PREFIX = "hf://datasets/"
#: Data files fetched when the URL names no path.
DEFAULT_PATTERNS: tuple[str, ...] = ("*.parquet", "*.jsonl", "*.json", "*.csv")
DATA_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv")


@dataclass(frozen=True)
class HubRef:
    """A parsed ``hf://datasets/...`` URL: repo_id 'OWNER/NAME', optional path (file or glob)
    inside the repo and optional revision."""

    repo_id: str
    path: str | None = None
    revision: str | None = None

    @property
    def url(self) -> str:
        rev = f"@{quote(self.revision, safe='')}" if self.revision else ""
        path = f"/{self.path}" if self.path else ""
        return f"{HF_PREFIX}{self.repo_id}{rev}{path}"

    def file_url(self, rel: str) -> str:
        """URL of one file of the repo (for messages)."""
        return HubRef(self.repo_id, rel, self.revision).url

    @property
    def is_glob(self) -> bool:
        return self.path is None or any(ch in self.path for ch in "*?[")


def is_hub_url(source: object) -> bool:
    """True when ``source`` is an ``hf://datasets/OWNER/NAME[...]`` address."""
    return isinstance(source, str) and source.startswith("hf://")


def parse_hf_url(url: str) -> HubRef:
    """Parse ``hf://datasets/OWNER/NAME[@REVISION][/PATH]``.

    Raises: DataError for another hf:// form (models and spaces hold no battle data) or a
    missing owner or name.
    """
    expected = "hf://datasets/OWNER/NAME[@REVISION][/PATH]"
    if not url.startswith(HF_PREFIX):
        raise DataError("only Hugging Face dataset URLs are supported", url, expected=expected)
    parts = url[len(HF_PREFIX) :].split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise DataError("the URL needs an owner and a dataset name", url, expected=expected)
    name, _, rev = parts[1].partition("@")
    if not name:
        raise DataError("the URL needs an owner and a dataset name", url, expected=expected)
    path = parts[2].strip("/") if len(parts) > 2 else ""
    return HubRef(f"{parts[0]}/{name}", path or None, unquote(rev) or None)


def _hub_message(ref: HubRef, err: Exception) -> str:
    from huggingface_hub import errors as hf_errors

    detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
    local = "download the files yourself and pass their local path (file or folder) instead"
    if isinstance(err, hf_errors.GatedRepoError):
        return f"{ref.url}: the dataset is gated; accept its conditions on huggingface.co and log in (`hf auth login` or HF_TOKEN), or {local}"
    if isinstance(err, hf_errors.LocalEntryNotFoundError) or isinstance(err, (ConnectionError, TimeoutError)):
        return f"{ref.url}: the Hugging Face hub is unreachable and the files are not in the local HF cache ({type(err).__name__}: {detail}); {local}"
    if isinstance(err, hf_errors.RepositoryNotFoundError):
        return f"{ref.url}: no such dataset on the Hugging Face hub (or it is private); check OWNER/NAME, or {local}"
    if isinstance(err, hf_errors.RevisionNotFoundError):
        return f"{ref.url}: revision {ref.revision!r} not found; {local}"
    if isinstance(err, hf_errors.EntryNotFoundError):
        return f"{ref.url}: no file {ref.path!r} in the dataset; {local}"
    return f"{ref.url}: could not fetch from the Hugging Face hub ({type(err).__name__}: {detail}); {local}"


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(rel, p) for p in patterns)


def download(ref: HubRef, *, allow_patterns: tuple[str, ...] | None = None, cache_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Fetch the data files of ``ref`` into the HF cache.

    Returns: [(url of the file, local path)], sorted by path in the repo.
    Raises: SourceUnavailable (one line: what was tried, why, and that a local path works) when
    the hub cannot be reached or refuses; DataError if nothing matches.
    """
    import huggingface_hub

    try:
        if not ref.is_glob:
            local = huggingface_hub.hf_hub_download(ref.repo_id, ref.path, repo_type="dataset", revision=ref.revision, cache_dir=cache_dir)
            return [(ref.url, Path(local))]
        patterns = (ref.path,) if ref.path else tuple(allow_patterns or DEFAULT_PATTERNS)
        folder = huggingface_hub.snapshot_download(ref.repo_id, repo_type="dataset", revision=ref.revision, allow_patterns=list(patterns), cache_dir=cache_dir)
    except OpenArenaError:
        raise
    except Exception as err:  # the hub client raises many kinds (HTTP, OS, offline mode)
        raise SourceUnavailable(_hub_message(ref, err)) from err
    root = Path(folder)
    found = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES and _matches(rel, patterns) and not rel.startswith("."):
            found.append((ref.file_url(rel), p))
    if not found:
        raise DataError(f"no data files matching {', '.join(patterns)} in the dataset", ref.url, expected="Parquet, JSON, JSONL or CSV files")
    return found

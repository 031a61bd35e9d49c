"""Public release of battles: Parquet in the arena-human-preference-100k schema, voter ids
hashed with a secret salt, personal data removed from the text, and a data card.

Schema (lmarena-ai/arena-human-preference-100k, dataset card of 2025): ``question_id`` (str),
``model_a``, ``model_b``, ``winner`` (str), ``conversation_a``, ``conversation_b`` (list of
{role, content, num_tokens}), ``turn`` (int64), ``anony`` (bool), ``language`` (str),
``tstamp`` (float64, Unix seconds), ``conv_metadata`` (struct: sum_user_tokens,
sum_assistant_a_tokens, sum_assistant_b_tokens, turns, header_count_a/_b {h1..h6},
list_count_a/_b {ordered, unordered}, bold_count_a/_b {'**', '__'}), ``is_code`` (bool),
``is_refusal`` (bool), ``dedup_tag`` (struct high_freq, sampled), ``category_tag`` (struct
criteria_v0.1 {7 bools}, if_v0.1 {if, score}, math_v0.1 {math}, creative_writing_v0.1
{creative_writing}), ``judge_hash`` (str); and two columns of our own: ``arena`` (str: 'text',
'vision' or 'code'; null when the source does not say) and ``image_sha256`` (list of str: the
SHA-256 of each image the user sent, in order, from the ``images`` key of the user messages;
empty for a text battle). The images themselves are never in the release unless the caller
passes ``images`` to :func:`export_release`: people's photos are not published by default,
and a hash lets those who hold an image find its battles. Columns we cannot fill are written as nulls, never
invented. Token counts and markdown counts are recomputed on the scrubbed text (cl100k_base,
FastChat's definition, :mod:`openarena.data.style`).

Voter ids: ``judge_hash = HMAC-SHA256(salt, judge)`` in hex. Without the salt the hashes cannot
be linked back to ids (a plain hash of an IP address or a sequential id can be brute-forced);
the same salt gives the same hash across releases, a new salt unlinks them.

Personal data (:func:`scrub_pii`), replaced by ``{{KIND}}`` placeholders:

- EMAIL: ``local@domain.tld`` addresses;
- CREDENTIALS: the ``user:password@`` part of URLs (``https://{{CREDENTIALS}}@host/...``);
- SECRET: API keys and tokens with a known shape (OpenAI ``sk-...``, AWS ``AKIA...``, GitHub
  ``ghp_...``/``github_pat_...``, Slack ``xox?-...``, Google ``AIza...``, ``Bearer <token>``,
  JWTs) and values after ``password``/``passwd``/``pwd``/``api_key``/``secret``/``token``
  ``=`` or ``:``, and the values of ``token``/``key``/``password``/``sig`` URL parameters;
- PHONE: numbers that libphonenumber (``phonenumbers``, offline metadata) accepts as valid,
  written in international format (``+...``) or in a national format of US, GB, IN, DE, FR, CA,
  AU, BR, RU, CN, JP with at least three digit groups (``(415) 555-2671``, ``020 7946 0958``);
  bare digit runs such as ``2147483647`` are left alone (they are mostly not phone numbers);
- CREDIT_CARD: 13-19 digit sequences (spaces/dashes allowed) passing the Luhn check;
- SSN: US social security numbers ``ddd-dd-dddd``; IBAN: ``CCdd`` + 11-30 alphanumerics;
- IP_ADDRESS: dotted IPv4 addresses.

Not caught: personal names, street addresses and other free-text identifiers (that needs a
named-entity model: presidio and scrubadub's name detector rely on spaCy/TextBlob models that
cannot be downloaded here); numbers in unusual national formats. The placeholders follow
scrubadub's ``{{KIND}}`` style. (We use our own detectors rather than scrubadub 2.0's defaults:
on our test strings its email detector turned "me at john.doe@example.com" into
"{{EMAIL}}@example.com", its credential detector swallowed the rest of a line, and its card
detector missed spaced numbers.)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from openarena import __version__
from openarena.data.battles import BattleTable
from openarena.data.categories import CRITERIA
from openarena.data.conversations import as_messages
from openarena.data.style import count_markdown, count_tokens
from openarena.errors import DataError
from openarena.text import message_text

__all__ = ["RELEASE_COLUMNS", "ReleaseResult", "export_release", "hash_voter", "image_sha256", "scrub_pii", "write_data_card"]

RELEASE_COLUMNS: tuple[str, ...] = (
    "question_id", "model_a", "model_b", "winner", "conversation_a", "conversation_b", "turn",
    "anony", "language", "tstamp", "conv_metadata", "is_code", "is_refusal", "dedup_tag",
    "category_tag", "judge_hash", "arena", "image_sha256",
)

# ============================================================================================
# PII

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
_URL_CREDS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@:]+:[^\s/@]+@")
_SECRETS = re.compile(
    r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b"
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/-]{16,}=*")
_KEY_VALUE = re.compile(r"(?i)(\b(?:password|passwd|pwd|api[_-]?key|secret|access[_-]?token|auth[_-]?token)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{4,})")
_URL_PARAM = re.compile(r"(?i)([?&](?:token|access_token|api_key|apikey|key|password|sig|signature)=)[^&\s#]+")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\d|\.\d)")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_DIGITS7 = re.compile(r"\d[\d\s().+-]{5,}\d")
# a national number as people write it: at least three digit groups split by spaces, dots or
# dashes, e.g. "(415) 555-2671", "020 7946 0958" (not "2147483647", "1800-2100", "6 8 4 2 4")
_NATIONAL_LAYOUT = re.compile(r"^\(?\d{2,5}\)?[\s.-]+\d{2,4}[\s.-]+\d{2,4}(?:[\s.-]+\d{2,4})?$")
PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "IN", "DE", "FR", "CA", "AU", "BR", "RU", "CN", "JP")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# issuer prefixes (IIN ranges) and lengths of the major card networks: Visa, Mastercard, Amex,
# Discover, JCB, Diners, UnionPay, Maestro (ISO/IEC 7812; the networks' published ranges)
_CARD_ISSUER = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"
    r"|3[47]\d{13}"
    r"|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}"
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"
    r"|3(?:0[0-5]|[689]\d)\d{11,16}"
    r"|62\d{14,17}"
    r"|(?:50|5[6-9]|6\d)\d{10,17})$"
)


def _cards(text: str, counts: dict[str, int]) -> str:
    def repl(m: re.Match) -> str:
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and _CARD_ISSUER.match(digits) and _luhn(digits) and len(set(digits)) > 1:
            counts["CREDIT_CARD"] = counts.get("CREDIT_CARD", 0) + 1
            return "{{CREDIT_CARD}}"
        return m.group(0)

    return _CARD.sub(repl, text)


def _phones(text: str, counts: dict[str, int], regions: Sequence[str]) -> str:
    if not _DIGITS7.search(text):
        return text
    import phonenumbers

    spans: list[tuple[int, int]] = []
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            # not the digits of a decimal number ("3.1415926535") or of a longer number
            if (m.start > 0 and text[m.start - 1] in "0123456789.,-/") or (m.end < len(text) and text[m.end].isdigit()):
                continue
            if not m.raw_string.startswith("+") and not _NATIONAL_LAYOUT.match(m.raw_string):
                continue
            spans.append((m.start, m.end))
    if not spans:
        return text
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, last = [], 0
    for s, e in merged:
        out.append(text[last:s])
        out.append("{{PHONE}}")
        last = e
    out.append(text[last:])
    counts["PHONE"] = counts.get("PHONE", 0) + len(merged)
    return "".join(out)


def scrub_pii(text: str, counts: dict[str, int] | None = None, *, phone_regions: Sequence[str] = PHONE_REGIONS) -> str:
    """Replace personal data in ``text`` by ``{{KIND}}`` placeholders (module docstring lists
    the kinds and what is not caught).

    Parameters: text; counts, a dict incremented per kind found (for the data card);
    phone_regions, regions whose national phone formats are recognised.
    Returns: the scrubbed text (unchanged when nothing is found).
    """
    if counts is None:
        counts = {}
    if not text:
        return text

    def sub(pattern: re.Pattern, kind: str, s: str, keep_group: int | None = None) -> str:
        def repl(m: re.Match) -> str:
            counts[kind] = counts.get(kind, 0) + 1
            return (m.group(keep_group) if keep_group else "") + "{{" + kind + "}}" + ("@" if kind == "CREDENTIALS" else "")

        return pattern.sub(repl, s)

    text = sub(_URL_CREDS, "CREDENTIALS", text, 1)
    text = sub(_SECRETS, "SECRET", text)
    text = sub(_BEARER, "SECRET", text, 1)
    text = sub(_KEY_VALUE, "SECRET", text, 1)
    text = sub(_URL_PARAM, "SECRET", text, 1)
    text = sub(_EMAIL, "EMAIL", text)
    text = sub(_SSN, "SSN", text)
    text = sub(_IBAN, "IBAN", text)
    text = _cards(text, counts)
    text = sub(_IPV4, "IP_ADDRESS", text)
    text = _phones(text, counts, phone_regions)
    return text


def hash_voter(judge: Any, salt: bytes | str) -> str | None:
    """HMAC-SHA256 of a voter id under ``salt`` (hex, 64 characters); None for a missing id.

    Raises: DataError if the salt is empty or shorter than 16 bytes.
    """
    key = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
    if len(key) < 16:
        raise DataError("the voter-id salt is missing or shorter than 16 bytes", field="salt", expected="a secret of at least 16 bytes (e.g. secrets.token_hex(32))")
    if judge is None or (isinstance(judge, float) and np.isnan(judge)) or judge is pd.NA:
        return None
    return hmac.new(key, str(judge).encode("utf-8"), hashlib.sha256).hexdigest()


# ============================================================================================
# rows


def _value(frame: pd.DataFrame, col: str, i: int) -> Any:
    if col not in frame.columns:
        return None
    v = frame[col].iloc[i]
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v.item() if isinstance(v, np.generic) else v


def _category_tag(frame: pd.DataFrame, i: int) -> dict[str, Any] | None:
    tag: dict[str, Any] = {}
    if all(f"criteria_{c}" in frame.columns for c in CRITERIA):
        vals = {c: _value(frame, f"criteria_{c}", i) for c in CRITERIA}
        tag["criteria_v0.1"] = None if any(v is None for v in vals.values()) else {c: bool(v) for c, v in vals.items()}
    if "category_if" in frame.columns:
        v, s = _value(frame, "category_if", i), _value(frame, "if_score", i)
        tag["if_v0.1"] = None if v is None else {"if": bool(v), "score": None if s is None else int(s)}
    if "category_math" in frame.columns:
        v = _value(frame, "category_math", i)
        tag["math_v0.1"] = None if v is None else {"math": bool(v)}
    if "category_creative_writing" in frame.columns:
        v = _value(frame, "category_creative_writing", i)
        tag["creative_writing_v0.1"] = None if v is None else {"creative_writing": bool(v)}
    return tag or None


@dataclass(frozen=True)
class ReleaseResult:
    """What :func:`export_release` wrote: parquet path, data card path, rows, PII counts per
    kind, and the date range (UTC ISO dates, None without timestamps)."""

    parquet: Path
    card: Path
    rows: int
    pii: dict[str, int]
    first_date: str | None
    last_date: str | None


def image_sha256(conversation: Any) -> list[str]:
    """The SHA-256 digests of the images of a conversation's user messages, in order (the
    ``images`` key of each message; hashes that are not 64 hex characters are dropped)."""
    out = []
    for m in as_messages(conversation):
        if m.get("role") == "user":
            for h in m.get("images") or ():
                if isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h):
                    out.append(h)
    return out


def _copy_images(hashes: Sequence[str], get: Callable[[str], bytes | None], folder: Path) -> int:
    """Write each image whose bytes hash to its name into ``folder``; returns how many."""
    n = 0
    for h in hashes:
        data = get(h)
        if data is None or hashlib.sha256(data).hexdigest() != h:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / h).write_bytes(data)
        n += 1
    return n


def export_release(
    battles: BattleTable,
    out_dir: str | Path,
    *,
    salt: bytes | str,
    name: str = "openarena-battles",
    license: str = "CC-BY-4.0",
    scrub: bool = True,
    phone_regions: Sequence[str] = PHONE_REGIONS,
    images: Callable[[str], bytes | None] | None = None,
) -> ReleaseResult:
    """Write ``<out_dir>/<name>.parquet`` and ``<out_dir>/README.md`` (the data card).

    Parameters:
        battles: N rows with at least model_a, model_b, winner; conversations, judge, tstamp,
            language, turn, anony, dedup and category columns are used when present.
        salt: secret for :func:`hash_voter` (>= 16 bytes); keep it private.
        name: file stem; license: the licence stated in the card (check that the conversations
            may be released under it).
        scrub: remove personal data from every message (:func:`scrub_pii`).
        images: None (default): the release lists image hashes only. A function giving the
            bytes of an image from its SHA-256 (e.g. ``ImageStore(folder).get``): the images
            are copied too, to ``<out_dir>/images/<sha256>`` (only those whose bytes match
            their hash; a missing one is skipped).
    Returns: ReleaseResult.
    Raises: DataError for a short salt, a name that is not a plain file name (no '/', no
    leading dot) or an unwritable out_dir.
    Source: the arena-human-preference-100k schema; FastChat conv release scripts
    (dataset_release_scripts) for the hashed-voter convention.
    """
    hash_voter("x", salt)  # validate the salt before any work
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name or ""):
        raise DataError(f"release name {name!r} is not a plain file name", field="name", expected="letters, digits, '.', '_' or '-', starting with a letter or digit (no folders)")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the release folder: {exc.strerror}", str(out)) from None
    frame = battles.frame
    n = len(frame)
    pii: dict[str, int] = {}
    convs: dict[str, list[list[dict[str, Any]]]] = {}
    for side in ("a", "b"):
        col = f"conversation_{side}"
        rows = []
        for v in (frame[col] if col in frame.columns else [None] * n):
            msgs = []
            for m in as_messages(v):
                text = message_text(m.get("content"))
                msgs.append({"role": str(m.get("role")), "content": scrub_pii(text, pii, phone_regions=phone_regions) if scrub else text})
            rows.append(msgs)
        convs[side] = rows
    # token counts of every message, recomputed on the released text
    flat = [m["content"] for side in ("a", "b") for conv in convs[side] for m in conv]
    tok = iter(count_tokens(flat).tolist())
    for side in ("a", "b"):
        for conv in convs[side]:
            for m in conv:
                m["num_tokens"] = int(next(tok))
    has_conv = "conversation_a" in frame.columns and "conversation_b" in frame.columns
    image_hashes = [image_sha256(frame["conversation_a"].iloc[i]) if has_conv else [] for i in range(n)]
    records = []
    for i in range(n):
        ca, cb = convs["a"][i], convs["b"][i]
        meta = None
        if has_conv:
            meta = {
                "sum_user_tokens": sum(m["num_tokens"] for m in ca if m["role"] == "user"),
                "sum_assistant_a_tokens": sum(m["num_tokens"] for m in ca if m["role"] == "assistant"),
                "sum_assistant_b_tokens": sum(m["num_tokens"] for m in cb if m["role"] == "assistant"),
                "turns": sum(1 for m in ca if m["role"] == "user"),
            }
            for side, conv in (("a", ca), ("b", cb)):
                md = count_markdown("\n".join(m["content"] for m in conv if m["role"] == "assistant")).as_metadata()
                meta |= {f"{k}_{side}": v for k, v in md.items()}
        high, sampled = _value(frame, "dedup_high_freq", i), _value(frame, "dedup_sampled", i)
        is_code = _value(frame, "category_coding", i)
        if is_code is None:
            is_code = _value(frame, "is_code", i)
        no_ref = _value(frame, "category_no_refusal", i)
        is_ref = (not bool(no_ref)) if no_ref is not None else _value(frame, "is_refusal", i)
        turn = _value(frame, "turn", i)
        qid = _value(frame, "question_id", i) or _value(frame, "battle_id", i)
        if qid is None:
            qid = hashlib.sha256(json.dumps([frame["model_a"].iloc[i], frame["model_b"].iloc[i], str(frame.index[i]), ca], ensure_ascii=False).encode()).hexdigest()[:32]
        records.append(
            {
                "question_id": str(qid),
                "model_a": str(frame["model_a"].iloc[i]),
                "model_b": str(frame["model_b"].iloc[i]),
                "winner": str(frame["winner"].iloc[i]),
                "conversation_a": ca if has_conv else None,
                "conversation_b": cb if has_conv else None,
                "turn": int(turn) if turn is not None else (meta["turns"] if meta else None),
                "anony": None if _value(frame, "anony", i) is None else bool(_value(frame, "anony", i)),
                "language": _value(frame, "language", i),
                "tstamp": None if _value(frame, "tstamp", i) is None else float(_value(frame, "tstamp", i)),
                "conv_metadata": meta,
                "is_code": None if is_code is None else bool(is_code),
                "is_refusal": None if is_ref is None else bool(is_ref),
                "dedup_tag": None if sampled is None else {"high_freq": bool(high) if high is not None else False, "sampled": bool(sampled)},
                "category_tag": _category_tag(frame, i),
                "judge_hash": hash_voter(_value(frame, "judge", i), salt),
                "arena": None if _value(frame, "arena", i) is None else str(_value(frame, "arena", i)),
                "image_sha256": image_hashes[i],
            }
        )
    if images is not None:
        _copy_images(sorted({h for hs in image_hashes for h in hs}), images, out / "images")
    table = pa.Table.from_pylist(records)
    k = table.column_names.index("image_sha256")  # list<string> even when every list is empty
    table = table.set_column(k, "image_sha256", pa.array(image_hashes, type=pa.list_(pa.string())))
    table = table.replace_schema_metadata({"openarena_version": __version__, "schema": "arena-human-preference-100k"})
    parquet = out / f"{name}.parquet"
    pq.write_table(table, parquet)
    dates = None
    if "tstamp" in frame.columns and frame["tstamp"].notna().any():
        ts = pd.to_numeric(frame["tstamp"], errors="coerce").dropna()
        dates = tuple(_dt.datetime.fromtimestamp(float(x), _dt.timezone.utc).date().isoformat() for x in (ts.min(), ts.max()))
    result = ReleaseResult(parquet, out / "README.md", n, dict(sorted(pii.items())), dates[0] if dates else None, dates[1] if dates else None)
    write_data_card(battles, result, license=license, name=name, scrubbed=scrub)
    return result


def write_data_card(battles: BattleTable, result: ReleaseResult, *, license: str, name: str, scrubbed: bool) -> Path:
    """Write the data card (markdown) of a release: counts, date range, models, filters
    applied (the table's FilterSteps), PII removed, hashing and licence notes."""
    f = battles.frame
    models = battles.models
    winners = f["winner"].astype(str).value_counts()
    lines = [
        f"# {name}",
        "",
        f"Human pairwise votes between chat models, exported by OpenArena {__version__} on "
        f"{_dt.datetime.now(_dt.timezone.utc).date().isoformat()}.",
        "",
        "## Counts",
        "",
        f"- battles: {result.rows:,}",
        f"- models: {len(models)}",
        f"- date range (UTC): {result.first_date or 'unknown'} to {result.last_date or 'unknown'}",
        "- outcomes: " + ", ".join(f"{w} {int(winners.get(w, 0)):,}" for w in ("model_a", "model_b", "tie", "tie (bothbad)")),
    ]
    if "judge" in f.columns:
        lines.append(f"- distinct voters: {f['judge'].nunique():,}")
    if "language" in f.columns:
        top = f["language"].astype(str).value_counts().head(5)
        lines.append("- top languages: " + ", ".join(f"{k} {v:,}" for k, v in top.items()))
    lines += ["", "## Filters applied", ""]
    if battles.steps:
        lines += ["| step | removed | remaining | detail |", "|---|---:|---:|---|"]
        lines += [f"| {s.name} | {s.removed:,.0f} | {s.remaining:,.0f} | {s.detail.replace('|', '/')} |" for s in battles.steps]
    else:
        lines.append("None recorded.")
    lines += [
        "",
        "## Privacy",
        "",
        "- `judge_hash` is HMAC-SHA256 of the voter id under a secret salt that is not published; "
        "hashes cannot be reversed or linked to other releases made with another salt.",
    ]
    if scrubbed:
        found = ", ".join(f"{k} {v:,}" for k, v in result.pii.items()) or "none found"
        lines += [
            f"- Personal data replaced by `{{{{KIND}}}}` placeholders in every message: {found}. Caught: e-mail "
            "addresses, credentials in URLs, API keys/tokens/passwords, phone numbers (libphonenumber), credit-card "
            "numbers (Luhn), US SSNs, IBANs, IPv4 addresses. Not caught: personal names, postal addresses and other "
            "free-text identifiers; review before publishing.",
            "- Token and markdown counts (`num_tokens`, `conv_metadata`) are computed on the scrubbed text "
            "(cl100k_base, FastChat's definition).",
        ]
    else:
        lines.append("- The text was NOT scrubbed of personal data.")
    lines += [
        "",
        "## Schema",
        "",
        "Columns of lmarena-ai/arena-human-preference-100k: " + ", ".join(f"`{c}`" for c in RELEASE_COLUMNS) + ". "
        "Columns the source did not have are null.",
        "",
        "## Licence",
        "",
        f"Released under {license}. The conversations contain model outputs whose providers' terms may "
        "restrict use (e.g. for training competing models), and user prompts whose authors agreed to the "
        "arena's terms of use; check both before redistribution.",
        "",
    ]
    result.card.write_text("\n".join(lines), encoding="utf-8")
    return result.card

"""Categories of battles: rule-based taggers, the labels a file carries, and the mask of each
published category (the LLM taggers are :mod:`openarena.judging.taggers`).

A category is a subset of the battles with its own leaderboard. The names are those of the
published leaderboards (lmarena-ai/arena-catalog data/leaderboard-text.json): ``full``,
``english``, ``chinese`` and the other languages, ``coding``, ``math``, ``creative_writing``,
``if``, ``hard_6``, ``hard_english_6``, ``multiturn``, ``long_user``, ``no_tie``, ``no_short``,
``no_refusal``, plus ``dedup`` (FastChat's de-duplicated board). :func:`category_mask` maps a
name to its battles.

Taggers add columns to a :class:`BattleTable`:

============================  ===========================================  =====================
tagger                        column(s)                                    kind
============================  ===========================================  =====================
``coding``                    ``category_coding``                          rule (FastChat)
``math_rule``                 ``category_math``                            rule (ours)
``multiturn``                 ``category_multiturn``                       rule (FastChat)
``long_user``                 ``category_long_user``, ``user_tokens``      rule (FastChat)
``no_short``                  ``category_no_short``, ``user_tokens``       rule (FastChat)
``language``                  ``language``                                 rule (lingua)
``no_refusal``                ``category_no_refusal``                      rule (ours)
``hard_prompt``               ``criteria_<7 names>``, ``category_hard_6``  LLM, criteria_v0.1
``if``                        ``if_score``, ``category_if``                LLM, if_v0.1
``math``                      ``category_math``                            LLM, math_v0.1
``creative_writing``          ``category_creative_writing``                LLM, creative_writing_v0.1
``refusal``                   ``category_no_refusal``                      LLM, refusal_v0.1
============================  ===========================================  =====================

Rule definitions and their sources:

- coding: FastChat fastchat/serve/monitor/code_tagger.py (``is_code``), ported line by line:
  a battle is coding when any message of either conversation (user or assistant) has a code
  fence, a programming concept or language name as a word, a library substring or an
  import/include regex; ```` ```plaintext ```` and ```` ```markdown ```` blocks are cut first
  (with FastChat's indexing quirk kept) and a message mentioning "ascii art" does not count.
  FastChat tokenises with nltk's word_tokenize, whose punkt model cannot be downloaded here; we
  split on whitespace and the punctuation Treebank splits off (``,;:!?()[]{}<>"'`` and a
  trailing period), which gives the same words for the names in the list.
- multiturn: ``turn >= 2`` (FastChat's turn = user turns of conversation_a).
- long_user: the user's tokens (``conv_metadata.sum_user_tokens``, else the messages'
  ``num_tokens``, else cl100k_base counts) >= 500; no_short: user tokens >= 5 (the arena's
  "Exclude Short Query (< 5 tokens)").
- language: lingua (``lingua-language-detector``, models bundled in the wheel) on the first
  user message, restricted to :data:`COMMON_LANGUAGES` (30 languages, about 97% of the arena's
  votes) for speed; ``'unknown'`` when lingua cannot decide or the text has no letters. FastChat
  used polyglot/cld2 (fastchat/utils.py detect_language), not installable here; names are the
  same English names ("English", "Chinese", ...).
- no_refusal (rule): no assistant message of either side starts like an English refusal
  (:data:`REFUSAL_PATTERNS`, first 300 characters). FastChat's own refusal tags are model based
  (refusal_v0.1 is the LLM prompt of the ``refusal`` LLM tagger, refusal_v0.2 a fine-tuned
  classifier, lmarena-ai/RefusalClassifier, not downloadable here), so this rule is ours; its
  agreement with the hand labels is measured in tests/data/test_categories.py.
- math_rule: ours, FastChat has only the LLM tagger: LaTeX math, or an arithmetic expression
  together with a math word, or two math words, in the user turns.

The LLM taggers (rows marked LLM above) are :mod:`openarena.judging.taggers`: the data layer
calls no model.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.data.conversations import as_messages, message_texts
from openarena.data.schema import TIE, TIE_BOTHBAD
from openarena.data.style import count_tokens
from openarena.errors import DataError
from openarena.text import message_text

__all__ = [
    "CATEGORY_NAMES",
    "COMMON_LANGUAGES",
    "CRITERIA",
    "RULE_TAGGERS",
    "apply_rule_taggers",
    "categories_from_tags",
    "category_mask",
    "detect_languages",
    "is_code_conversation",
    "is_code_text",
    "is_math_text",
    "is_refusal_text",
    "prompt_text",
    "require_columns",
]

LONG_USER_TOKENS = 500
SHORT_USER_TOKENS = 5
MAX_PROMPT_CHARS = 12_500  # FastChat add_markdown_info.py truncates prompts to 12,500 characters

# ============================================================================================
# conversations


def prompt_text(conv: Any, max_chars: int | None = MAX_PROMPT_CHARS) -> str:
    """The user turns of a conversation joined with newlines (FastChat's ``prompt`` of
    criteria_labeling.py / label.py), cut at ``max_chars`` characters (None: not cut)."""
    text = "\n".join(message_texts(conv, "user"))
    return text if max_chars is None else text[:max_chars]


def require_columns(frame: pd.DataFrame, cols: Sequence[str], source: str, tagger: str) -> None:
    """Raise DataError naming the first of ``cols`` that ``frame`` lacks (``tagger`` needs it)."""
    for c in cols:
        if c not in frame.columns:
            raise DataError(f"tagger {tagger!r} needs column {c!r}", source, field=c, expected="battles with conversations (e.g. a FastChat clean_battle file)")


# ============================================================================================
# coding: FastChat code_tagger.py

CODE_CONCEPTS = ("git", "github", "pull request", "dataframe", "nginx", "pip")
CODE_LANGUAGES = (
    "python", "c++", "cpp", "java", "javascript", "typescript", "html", "css", "sql", "bash",
    "powershell", "matlab", "golang", "linux", "ubuntu",
)
CODE_STRINGS = (
    "import pandas", "import numpy", "import torch", "jax", "tensorflow", "pytorch", "keras",
    "scikit-learn", "sklearn", " apt-get ",
)
CODE_REGEXES = (
    r"from \w+ import \w+",
    r"conda install \w+",
    r"pip install -r \w+",
    r"conda install -c \w+ \w+",
    r"#include <\w+>",
    r"import \w+ as \w+",
    r"#include \"\w+\.h\"",
)
_CODE_REGEXES = [re.compile(r) for r in CODE_REGEXES]
_WORD_SPLIT = re.compile(r"[\s,;:!?()\[\]{}<>\"'`]+")


def _word_tokens(text: str) -> set[str]:
    """Lower-cased words, split like nltk's Treebank tokenizer for our purpose (see module doc)."""
    out = set()
    for w in _WORD_SPLIT.split(text.lower()):
        w = w.rstrip(".")
        if w:
            out.add(w)
    return out


def _cut_block(text: str, marker: str) -> str:
    # FastChat's code, quirk included: the closing line is searched with a *character* slice
    # line[line1_idx + 1:] over all lines, not with lines[line1_idx + 1:].
    lines = text.split("\n")
    line1_idx = [idx for idx, line in enumerate(lines) if marker in line][0]
    line2 = [line1_idx + 1 + idx for idx, line in enumerate(lines) if "```" in line[line1_idx + 1 :]]
    if line2:
        return "\n".join(lines[:line1_idx]) + "\n".join(lines[line2[0] + 1 :])
    return "\n".join(lines[:line1_idx])


def is_code_text(text: str) -> tuple[bool, list[str]]:
    """FastChat ``is_code_conversation(text)``: (is code, the cues that matched).

    Source: lm-sys/FastChat fastchat/serve/monitor/code_tagger.py.
    """
    while True:
        if "```plaintext" in text:
            text = _cut_block(text, "```plaintext")
            continue
        if "```markdown" in text:
            text = _cut_block(text, "```markdown")
            continue
        break
    if "ascii art" in text.lower():
        return False, []
    if "```" in text:
        return True, ["backticks"]
    tokens = _word_tokens(text)
    hits = sorted(tokens.intersection(CODE_CONCEPTS))
    if hits:
        return True, hits
    hits = sorted(tokens.intersection(CODE_LANGUAGES))
    if hits:
        return True, hits
    hits = [s for s in CODE_STRINGS if s in text]
    if hits:
        return True, hits
    hits = [r.pattern for r in _CODE_REGEXES if r.search(text)]
    if hits:
        return True, hits
    return False, []


def is_code_conversation(*convs: Any) -> tuple[bool, list[str]]:
    """FastChat ``check_conv_row``: the first message (of conversation_a, then _b) that is code."""
    for conv in convs:
        for m in as_messages(conv):
            content = m.get("content")
            if not isinstance(content, str):
                continue
            hit = is_code_text(content)
            if hit[0]:
                return hit
    return False, []


def _tag_coding(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    require_columns(frame, ("conversation_a", "conversation_b"), source, "coding")
    vals = [is_code_conversation(a, b)[0] for a, b in zip(frame["conversation_a"], frame["conversation_b"])]
    return {"category_coding": np.asarray(vals, dtype=bool)}


# ============================================================================================
# math (rule, ours)

_LATEX_MATH = re.compile(r"\\(frac|dfrac|int|iint|sum|prod|sqrt|lim|cdot|times|infty|partial|binom|mathbb|leq|geq|neq)\b|\$[^$\n]*(\\[a-zA-Z]+|\^|_\{)[^$\n]*\$")
_MATH_STRONG = re.compile(
    r"\b(solve|equations?|integral of|integrate|derivative|differentiate|probability|theorem|prove that|"
    r"polynomials?|factorial|logarithms?|eigen\w*|calculus|algebra(ic)?|geometry|arithmetic|square roots?|"
    r"integers?|prime numbers?|divisible|modulo|quadratic|trigonometr\w*)\b",
    re.IGNORECASE,
)
_MATH_WEAK = re.compile(r"\b(how many|how much|calculate|compute|percent(age)?|average|ratio|sum of|product of|in total)\b|%", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|hundred)\b", re.IGNORECASE)
_FENCE = re.compile("```")


def is_math_text(text: str) -> bool:
    """Our rule-based math cue (FastChat has only the LLM tagger math_v0.1), for English
    prompts without code fences: LaTeX math (a backslash command, or ``$...$`` holding one, a
    ``^`` or ``_{``), or a strong math word (solve, equation, probability, integer, ...), or,
    in a prompt of at most 1,000 characters, a quantity question (how many, calculate, %, ...)
    with a number."""
    if _FENCE.search(text):
        return False
    if _LATEX_MATH.search(text) or _MATH_STRONG.search(text):
        return True
    return len(text) <= 1000 and bool(_MATH_WEAK.search(text)) and bool(_NUMBER.search(text))


def _tag_math_rule(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    require_columns(frame, ("conversation_a",), source, "math_rule")
    return {"category_math": np.asarray([is_math_text(prompt_text(c, None)) for c in frame["conversation_a"]], dtype=bool)}


# ============================================================================================
# multiturn, user tokens


def _turns(frame: pd.DataFrame, source: str) -> np.ndarray:
    if "turn" in frame.columns:
        t = pd.to_numeric(frame["turn"], errors="coerce")
        if not t.isna().any():
            return t.to_numpy(dtype=np.int64)
    require_columns(frame, ("conversation_a",), source, "multiturn")
    return np.asarray([len(message_texts(c, "user")) for c in frame["conversation_a"]], dtype=np.int64)


def _tag_multiturn(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    return {"category_multiturn": _turns(frame, source) >= 2}


def user_tokens(frame: pd.DataFrame, source: str = "", encoding: str = "cl100k_base") -> np.ndarray:
    """Tokens of the user turns of each battle, int64 (n,): conv_metadata.sum_user_tokens when
    present, else the sum of the user messages' ``num_tokens`` (FastChat, cl100k_base), else
    counted with ``encoding``. Raises DataError when a row has none of them."""
    n = len(frame)
    out = np.full(n, -1, dtype=np.int64)
    if "conv_metadata" in frame.columns:
        for i, meta in enumerate(frame["conv_metadata"].tolist()):
            if isinstance(meta, str):
                try:
                    meta = json.loads(meta)
                except json.JSONDecodeError:
                    meta = None
            v = meta.get("sum_user_tokens") if isinstance(meta, dict) else None
            if isinstance(v, (int, np.integer, float)) and not isinstance(v, bool) and np.isfinite(v):
                out[i] = int(v)
    todo = np.flatnonzero(out < 0)
    if todo.size:
        require_columns(frame, ("conversation_a",), source, "long_user")
        convs = frame["conversation_a"].tolist()
        texts, owner = [], []
        for i in todo:
            msgs = [m for m in as_messages(convs[i]) if m.get("role") == "user"]
            known = [m.get("num_tokens") for m in msgs]
            if msgs and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in known):
                out[i] = int(sum(known))
            else:
                out[i] = 0
                texts.extend(message_text(m.get("content")) for m in msgs)
                owner.extend([i] * len(msgs))
        if texts:
            out += np.bincount(np.asarray(owner, dtype=np.int64), weights=count_tokens(texts, encoding), minlength=n).astype(np.int64)
    return out


def _tag_long_user(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    tok = user_tokens(frame, source)
    return {"user_tokens": tok, "category_long_user": tok >= LONG_USER_TOKENS}


def _tag_no_short(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    tok = user_tokens(frame, source)
    return {"user_tokens": tok, "category_no_short": tok >= SHORT_USER_TOKENS}


# ============================================================================================
# language (lingua)

#: Languages lingua chooses among (restricting the set makes detection ~5x faster and avoids
#: rare look-alikes such as Bokmal/Nynorsk or Malay/Indonesian). Names as FastChat writes them.
COMMON_LANGUAGES: tuple[str, ...] = (
    "English", "Chinese", "Russian", "German", "French", "Spanish", "Japanese", "Korean",
    "Portuguese", "Italian", "Vietnamese", "Polish", "Arabic", "Turkish", "Persian", "Indonesian",
    "Dutch", "Ukrainian", "Czech", "Hindi", "Thai", "Hebrew", "Greek", "Swedish", "Hungarian",
    "Romanian", "Bengali", "Danish", "Finnish", "Bulgarian",
)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@functools.lru_cache(maxsize=8)
def _detector(languages: tuple[str, ...]):
    from lingua import Language, LanguageDetectorBuilder

    try:
        langs = [getattr(Language, name.upper()) for name in languages]
    except AttributeError as exc:
        raise DataError(f"lingua does not know language {exc.name!r}", field="languages") from None
    return LanguageDetectorBuilder.from_languages(*langs).build()


def detect_languages(
    texts: Sequence[str], languages: Sequence[str] = COMMON_LANGUAGES, *, max_chars: int = 2000, min_confidence: float = 0.3
) -> list[str]:
    """Language names of the texts ('English', 'Chinese', ...; 'unknown' when undecided).

    Parameters: texts, n strings (only the first max_chars characters are used); languages,
    the candidate set (names of lingua.Language, any case); min_confidence, below this
    lingua confidence of the best language the answer is 'unknown' (greetings such as "Hi" or
    "Hello" get 0.1-0.3 and are otherwise assigned to Vietnamese or Italian).
    Returns: list of n names, title case as FastChat writes them.
    Source: lingua-language-detector (Peter M. Stahl), models bundled in the wheel.
    """
    det = _detector(tuple(languages))
    clipped = [t[:max_chars] if isinstance(t, str) else "" for t in texts]
    found = det.compute_language_confidence_values_in_parallel(clipped)
    out = []
    for t, conf in zip(clipped, found):
        if not conf or not _LETTER.search(t) or conf[0].value < min_confidence:
            out.append("unknown")
        else:
            out.append(conf[0].language.name.title())
    return out


def _tag_language(frame: pd.DataFrame, source: str, languages: Sequence[str] = COMMON_LANGUAGES) -> dict[str, Any]:
    require_columns(frame, ("conversation_a",), source, "language")
    first = []
    for c in frame["conversation_a"]:
        users = message_texts(c, "user")
        first.append(users[0] if users else "")
    return {"language": np.asarray(detect_languages(first, languages), dtype=object)}


# ============================================================================================
# refusal (rule, ours)

#: English refusal openings, matched case-insensitively in the first 300 characters of an
#: assistant message (curly apostrophes normalised).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\b(i'm|i am) (so |very |really )?(sorry|afraid)\b[^.!?\n]{0,40}\b(i|but i|that i)\b[^.!?\n]{0,20}\b(can't|cannot|can not|won't|will not|am unable|'m unable|am not able|'m not able|do not|don't|must)\b",
    r"\bi (must |have to )?apologi[sz]e,? but (i|that)\b",
    r"\bi (can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to|'m not able to|must decline to|must respectfully decline to|do not feel comfortable|don't feel comfortable) (help|assist|provide|fulfill|comply|create|generate|write|engage|support|answer|produce|share|give|continue|discuss|do that|do this)",
    r"\bas an ai( language model| assistant)?,? i (can't|cannot|don't|do not|am not able|am unable|won't)",
    r"\b(i'm|i am) not (able|comfortable|going) to (help|assist|provide|create|write|engage|generate|produce|answer|do)",
    r"\bi (must|have to) (respectfully )?decline\b",
    r"\b(this|that|your) request (goes against|violates|is against)\b",
)
_REFUSAL = re.compile("|".join(f"(?:{p})" for p in REFUSAL_PATTERNS), re.IGNORECASE)


def is_refusal_text(text: str, head: int = 300) -> bool:
    """True when the first ``head`` characters of an answer match :data:`REFUSAL_PATTERNS`."""
    return bool(_REFUSAL.search(text[:head].replace("\u2019", "'")))


def _tag_no_refusal(frame: pd.DataFrame, source: str) -> dict[str, Any]:
    require_columns(frame, ("conversation_a", "conversation_b"), source, "no_refusal")
    vals = []
    for a, b in zip(frame["conversation_a"], frame["conversation_b"]):
        refused = any(is_refusal_text(t) for conv in (a, b) for t in message_texts(conv, "assistant"))
        vals.append(not refused)
    return {"category_no_refusal": np.asarray(vals, dtype=bool)}


RULE_TAGGERS: dict[str, Callable[[pd.DataFrame, str], dict[str, Any]]] = {
    "coding": _tag_coding,
    "math_rule": _tag_math_rule,
    "multiturn": _tag_multiturn,
    "long_user": _tag_long_user,
    "no_short": _tag_no_short,
    "language": _tag_language,
    "no_refusal": _tag_no_refusal,
}
DEFAULT_RULE_TAGGERS = ("coding", "multiturn", "long_user", "no_short", "language", "no_refusal")


def apply_rule_taggers(frame: pd.DataFrame, source: str, taggers: Sequence[str], languages: Sequence[str] = COMMON_LANGUAGES) -> None:
    """Run the rule taggers among ``taggers`` (names of :data:`RULE_TAGGERS`, in order; other
    names are skipped) on ``frame`` (N rows with conversations), adding their columns in place.
    ``languages``: candidate languages of the ``language`` tagger. Raises: DataError from a
    tagger (a missing column or a malformed conversation, naming its row)."""
    for t in taggers:
        if t in RULE_TAGGERS:
            out = _tag_language(frame, source, languages) if t == "language" else RULE_TAGGERS[t](frame, source)
            for col, vals in out.items():
                frame[col] = vals


# ============================================================================================
# FastChat category_tag -> our columns

#: The seven criteria of FastChat's criteria_v0.1 (hard prompts), in the order of its prompt;
#: a battle is hard_6 when it meets at least six. Columns ``criteria_<name>``.
CRITERIA: tuple[str, ...] = ("specificity", "domain_knowledge", "complexity", "problem_solving", "creativity", "technical_accuracy", "real_world")


def categories_from_tags(battles: BattleTable) -> BattleTable:
    """Columns from the labels a public file already carries (FastChat ``category_tag`` and
    ``is_code``): criteria_v0.1 -> criteria_* and category_hard_6; if_v0.1 -> if_score,
    category_if; math_v0.1 -> category_math; creative_writing_v0.1 -> category_creative_writing;
    refusal_v0.2 (or v0.1) -> category_no_refusal; is_code -> category_coding. A row without the
    tag gets NA ('boolean' dtype). Tags absent from every row give no column.
    """
    frame = battles.frame.copy()
    n = len(frame)
    tags = frame["category_tag"].tolist() if "category_tag" in frame.columns else [None] * n
    parsed = []
    for t in tags:
        if isinstance(t, str):
            try:
                t = json.loads(t)
            except json.JSONDecodeError:
                t = None
        parsed.append(t if isinstance(t, dict) else {})

    def pick(key: str, field_: str) -> list[Any]:
        out = []
        for t in parsed:
            v = t.get(key)
            out.append(v.get(field_) if isinstance(v, dict) else None)
        return out

    cols: dict[str, list[Any]] = {}
    for c in CRITERIA:
        cols[f"criteria_{c}"] = pick("criteria_v0.1", c)
    if any(v is not None for v in cols["criteria_specificity"]):
        flags = np.array([[bool(cols[f"criteria_{c}"][i]) for c in CRITERIA] for i in range(n)])
        has = np.array([cols["criteria_specificity"][i] is not None for i in range(n)])
        cols["category_hard_6"] = [bool(f.sum() >= 6) if h else None for f, h in zip(flags, has)]
    else:
        cols = {}
    if_score = pick("if_v0.1", "score")
    if any(v is not None for v in if_score):
        cols["if_score"] = if_score
        cols["category_if"] = [None if s is None else int(s) >= 4 for s in if_score]
    for key, fld, col in (("math_v0.1", "math", "category_math"), ("creative_writing_v0.1", "creative_writing", "category_creative_writing")):
        vals = pick(key, fld)
        if any(v is not None for v in vals):
            cols[col] = vals
    ref = pick("refusal_v0.2", "refusal")
    ref = [r if r is not None else (t.get("refusal_v0.2") if isinstance(t.get("refusal_v0.2"), bool) else None) for r, t in zip(ref, parsed)]
    ref = [r if r is not None else v for r, v in zip(ref, pick("refusal_v0.1", "refusal"))]
    if any(v is not None for v in ref):
        cols["category_no_refusal"] = [None if r is None else not bool(r) for r in ref]
    if "is_code" in frame.columns:
        cols["category_coding"] = [None if pd.isna(v) else bool(v) for v in frame["is_code"]]
    for col, vals in cols.items():
        frame[col] = pd.array(vals, dtype="Int64" if col == "if_score" else "boolean")
    return battles.with_frame(frame)


# ============================================================================================
# category masks

#: Category name -> (column, tagger that makes it). Languages and the derived names are
#: handled in :func:`category_mask`.
CATEGORY_COLUMNS: dict[str, tuple[str, str]] = {
    "coding": ("category_coding", "coding"),
    "math": ("category_math", "math or math_rule"),
    "creative_writing": ("category_creative_writing", "creative_writing"),
    "if": ("category_if", "if"),
    "hard_6": ("category_hard_6", "hard_prompt"),
    "multiturn": ("category_multiturn", "multiturn"),
    "long_user": ("category_long_user", "long_user"),
    "no_short": ("category_no_short", "no_short"),
    "no_refusal": ("category_no_refusal", "no_refusal or refusal"),
}
#: The category names of the published text leaderboard that :func:`category_mask` knows,
#: besides any language name.
CATEGORY_NAMES: tuple[str, ...] = ("full", "no_tie", "dedup", "hard_english_6", *CATEGORY_COLUMNS)


def _bool_column(frame: pd.DataFrame, col: str) -> np.ndarray:
    s = frame[col]
    if s.dtype == bool:
        return s.to_numpy()
    return pd.array(s, dtype="boolean").fillna(False).to_numpy(dtype=bool)


def _language_mask(frame: pd.DataFrame, name: str, source: str) -> np.ndarray:
    if "language" not in frame.columns:
        raise DataError(f"category {name!r} needs a language column", source, field="language", expected="run the 'language' tagger")
    return frame["language"].astype(str).str.lower().to_numpy() == name.lower()


def category_mask(battles: BattleTable, name: str) -> np.ndarray:
    """Which battles belong to category ``name``.

    Parameters: battles (N rows, tagged); name, one of :data:`CATEGORY_NAMES` or a language
    name ('english', 'chinese', 'japanese', ... case-insensitive, as in the published names).
    Returns: bool array of shape (N,). Missing (NA) tags count as outside the category.
    Definitions: full = all; no_tie = winner is not a tie; dedup = ``dedup_sampled`` (FastChat
    dedup_tag.sampled); hard_english_6 = hard_6 and English; the others read their column
    (:data:`CATEGORY_COLUMNS`); a name that is not a category but a language (lingua's list)
    selects ``language == name``.
    Raises: DataError when the needed column is missing (naming the tagger to run) or the
    name is unknown.
    """
    frame = battles.frame
    key = name.strip().lower()
    n = len(frame)
    if key == "full":
        return np.ones(n, dtype=bool)
    if key == "no_tie":
        return ~frame["winner"].astype(str).isin([TIE, TIE_BOTHBAD]).to_numpy()
    if key == "dedup":
        if "dedup_sampled" not in frame.columns:
            raise DataError("category 'dedup' needs dedup_sampled", battles.source, field="dedup_sampled", expected="run openarena.data.curation.dedup_prompts")
        return _bool_column(frame, "dedup_sampled")
    if key == "hard_english_6":
        return category_mask(battles, "hard_6") & _language_mask(frame, "english", battles.source)
    if key in CATEGORY_COLUMNS:
        col, tagger = CATEGORY_COLUMNS[key]
        if col not in frame.columns:
            raise DataError(f"category {name!r} needs column {col!r}", battles.source, field=col, expected=f"run the {tagger!r} tagger (or categories_from_tags on a file with category_tag)")
        return _bool_column(frame, col)
    from lingua import Language

    if hasattr(Language, key.upper()) or key == "unknown":
        return _language_mask(frame, key, battles.source)
    raise DataError(f"unknown category {name!r}", battles.source, field="category", expected=", ".join(CATEGORY_NAMES) + ", or a language name")


#: The column each rule tagger writes (the category it feeds).
RULE_COLUMNS: dict[str, str] = {
    "coding": "category_coding",
    "math_rule": "category_math",
    "multiturn": "category_multiturn",
    "long_user": "category_long_user",
    "no_short": "category_no_short",
    "language": "language",
    "no_refusal": "category_no_refusal",
}


def ensure_categories(battles: BattleTable, taggers: Sequence[str] = DEFAULT_RULE_TAGGERS) -> BattleTable:
    """The battles with their category columns: first from the labels the source carries
    (:func:`categories_from_tags` on ``category_tag`` / ``is_code``), then, when the battles
    have conversations, from the rule ``taggers`` whose column is still missing.

    Parameters: battles (N rows); taggers, names from :data:`RULE_TAGGERS`.
    Returns: a BattleTable with the same rows (unchanged when nothing is missing or there is
    nothing to tag from).
    Raises: DataError from the taggers (a malformed conversation, naming its row).
    """
    frame = battles.frame
    if "category_tag" in frame.columns or "is_code" in frame.columns:
        battles = categories_from_tags(battles)
    if "conversation_a" not in battles.frame.columns:
        return battles
    missing = [t for t in taggers if RULE_COLUMNS[t] not in battles.frame.columns]
    if not missing:
        return battles
    frame = battles.frame.copy()
    apply_rule_taggers(frame, battles.source, list(dict.fromkeys(missing)))
    return battles.with_frame(frame)

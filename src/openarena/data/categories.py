"""Categories of battles: rule-based and LLM taggers, and the mask of each published category.

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
  (refusal_v0.1 is the LLM prompt of the ``refusal`` tagger below, refusal_v0.2 a fine-tuned
  classifier, lmarena-ai/RefusalClassifier, not downloadable here), so this rule is ours; its
  agreement with the hand labels is measured in tests/data/test_categories.py.
- math_rule: ours, FastChat has only the LLM tagger: LaTeX math, or an arithmetic expression
  together with a math word, or two math words, in the user turns.

LLM taggers send FastChat's prompts verbatim (fastchat/serve/monitor/classify/category.py) to
any OpenAI-compatible endpoint through :mod:`openarena.providers` and parse the answer with
FastChat's regular expressions; where FastChat falls back to a default (no match, or several
different matches), we count the answer as *unparseable* and leave the value missing (NA):
it is reported, never guessed. Answers are cached in SQLite (:class:`TagCache`) by a hash of
tagger version, labeler model and messages, so a re-run costs no call; identical prompts in a
run are asked once.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import hashlib
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, FilterStep
from openarena.data.conversations import as_messages, message_texts
from openarena.data.schema import TIE, TIE_BOTHBAD
from openarena.data.style import count_tokens, message_text
from openarena.errors import DataError, OpenArenaError

__all__ = [
    "CATEGORY_NAMES",
    "COMMON_LANGUAGES",
    "CRITERIA",
    "LLM_TAGGERS",
    "RULE_TAGGERS",
    "LLMTagger",
    "TagCache",
    "TagReport",
    "categories_from_tags",
    "category_mask",
    "detect_languages",
    "is_code_conversation",
    "is_code_text",
    "is_math_text",
    "is_refusal_text",
    "prompt_text",
    "run_taggers",
    "tag_battles",
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


def _require(frame: pd.DataFrame, cols: Sequence[str], source: str, tagger: str) -> None:
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
    _require(frame, ("conversation_a", "conversation_b"), source, "coding")
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
    _require(frame, ("conversation_a",), source, "math_rule")
    return {"category_math": np.asarray([is_math_text(prompt_text(c, None)) for c in frame["conversation_a"]], dtype=bool)}


# ============================================================================================
# multiturn, user tokens


def _turns(frame: pd.DataFrame, source: str) -> np.ndarray:
    if "turn" in frame.columns:
        t = pd.to_numeric(frame["turn"], errors="coerce")
        if not t.isna().any():
            return t.to_numpy(dtype=np.int64)
    _require(frame, ("conversation_a",), source, "multiturn")
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
        _require(frame, ("conversation_a",), source, "long_user")
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
    _require(frame, ("conversation_a",), source, "language")
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
    _require(frame, ("conversation_a", "conversation_b"), source, "no_refusal")
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

# ============================================================================================
# LLM taggers


@dataclass(frozen=True)
class LLMTagger:
    """One FastChat LLM category: its prompt, the parser of the answer, and the columns.

    Attributes: name (tagger name), version (FastChat's name_tag, part of the cache key),
    system_prompt, template (user message, ``{PROMPT}``/``{RESPONSE_A}``/``{RESPONSE_B}``),
    max_tokens (answer budget), columns (what :meth:`parse` fills), needs_responses (the
    prompt shows the answers, not the question).
    """

    name: str
    version: str
    system_prompt: str
    template: str
    columns: tuple[str, ...]
    max_tokens: int = 512
    needs_responses: bool = False

    def messages(self, fields: dict[str, str]) -> list[dict[str, str]]:
        """The chat messages for one battle: [system, user]."""
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": self.template.format(**fields)}]

    def parse(self, judgment: str) -> dict[str, Any] | None:
        """Column values from the labeler's answer, or None when it is unparseable."""
        return _PARSERS[self.name](judgment)


#: The seven criteria of FastChat's criteria_v0.1 (hard prompts), in the order of its prompt;
#: a battle is hard_6 when it meets at least six. Columns ``criteria_<name>``.
CRITERIA: tuple[str, ...] = ("specificity", "domain_knowledge", "complexity", "problem_solving", "creativity", "technical_accuracy", "real_world")
_CRITERIA_PATTERN = re.compile(r"(\[\d(?:\,\s\d)*\])")
_IF_PATTERN = re.compile(r"<score>([012345])<\/score>")
_DECISION = re.compile(r"<decision>(\w+)<\/decision>")
_REFUSAL_DECISION = re.compile(r"<decision>([a-z]+)</decision>")


def _unique(matches: list[str]) -> str | None:
    matches = [m for m in matches if m != ""]
    return matches[0] if len(set(matches)) == 1 else None


def _parse_criteria(judgment: str) -> dict[str, Any] | None:
    m = _unique(_CRITERIA_PATTERN.findall(judgment))
    if m is None:
        return None
    try:
        nums = ast.literal_eval(m)
    except (SyntaxError, ValueError):
        return None
    if not all(isinstance(x, int) and 1 <= x <= 7 for x in nums):
        return None
    flags = {f"criteria_{name}": (k + 1) in nums for k, name in enumerate(CRITERIA)}
    return flags | {"category_hard_6": sum(flags.values()) >= 6}


def _parse_if(judgment: str) -> dict[str, Any] | None:
    m = _unique(_IF_PATTERN.findall(judgment))
    if m is None:
        return None
    score = int(m)
    return {"if_score": score, "category_if": score >= 4}


def _yes_no(judgment: str, extra_strip: bool) -> bool | None:
    text = judgment.replace("\n", "")
    if extra_strip:
        text = text.replace("[", "").replace("]", "").replace(" ", "")
    m = _unique(_DECISION.findall(text.lower()))
    if m not in ("yes", "no"):
        return None
    return m == "yes"


def _parse_math(judgment: str) -> dict[str, Any] | None:
    v = _yes_no(judgment, extra_strip=False)
    return None if v is None else {"category_math": v}


def _parse_creative(judgment: str) -> dict[str, Any] | None:
    v = _yes_no(judgment, extra_strip=True)
    return None if v is None else {"category_creative_writing": v}


def _parse_refusal(judgment: str) -> dict[str, Any] | None:
    m = _REFUSAL_DECISION.search(judgment.replace("\n", "").replace("[", "").replace("]", "").lower())
    if m is None or m.group(1) not in ("a", "b", "both", "neither"):
        return None
    return {"category_no_refusal": m.group(1) == "neither"}


_PARSERS: dict[str, Callable[[str], dict[str, Any] | None]] = {
    "hard_prompt": _parse_criteria,
    "if": _parse_if,
    "math": _parse_math,
    "creative_writing": _parse_creative,
    "refusal": _parse_refusal,
}

# The prompts below are FastChat's (fastchat/serve/monitor/classify/category.py), verbatim.
_HARD_SYS = (
    "Your task is to evaluate how well the following input prompts can assess the capabilities of advanced AI assistants.\n\n"
    "For the input prompt, please analyze it based on the following 7 criteria.\n"
    "1. Specificity: Does the prompt ask for a specific output, such as code, a mathematical solution, a logical simplification, a problem-solving strategy, or a hardware setup recommendation? This specificity allows the AI to demonstrate its ability to understand and generate precise responses.\n"
    "2. Domain Knowledge: Does the prompt cover a specific domain, such as programming, mathematics, logic, problem-solving, or hardware setup? Prompts spanning a range of topics test the AI's breadth of knowledge and its ability to apply that knowledge to different domains.\n"
    "3. Complexity: Does the prompt vary in complexity, from straightforward tasks to more complex, multi-step problems? This allows evaluators to assess the AI's capability to handle problems of varying difficulty.\n"
    "4. Problem-Solving Skills: Does the prompt directly involves the AI to demonstrate active problem-solving skills, such systemically coming up with a solution for a specific setup instead of regurgitating an existing fact? This tests the AI's ability to apply logical reasoning and provide practical solutions.\n"
    "5. Creativity: Does the prompt involve a level of creativity in approaching the problem? This criterion tests the AI's ability to provide tailored solutions that take into account the user's specific needs and limitations.\n"
    "6. Technical Accuracy: Does the prompt require technical accuracy in the response? This allows evaluators to assess the AI's precision and correctness in technical fields.\n"
    "7. Real-world Application: Does the prompt relate to real-world applications, such as setting up a functional system or writing code for a practical use case? This tests the AI's ability to provide practical and actionable information that could be implemented in real-life scenarios.\n\n"
    'You must list the criteria numbers that the prompt satisfies in the format of a Python array. For example, "[...]". Do not explain your choice.'
)
_IF_SYS = (
    "You are an AI assistant tasked with determining whether a given user prompt can effectively assess another AI's ability to follow instructions. "
    "Your goal is to analyze the prompt and decide if it contains specific, clear instructions that would test an AI's capability to understand and execute directions accurately. "
    "Carefully examine the user prompt and consider the following aspects:\n"
    "1. Does it contain specific instructions or requirements?\n"
    "2. Are there multiple steps or elements the AI needs to address?\n"
    "3. Does it ask for a particular format or structure in the response?\n"
    "4. Is there a unique or challenging aspect that would test the AI's ability to follow directions precisely?\n\n"
    "Consider both the content and the structure of the instructions. A good prompt for assessing instruction-following capabilities should have clear, specific directions that can be objectively evaluated. "
    "Think about why this prompt does or does not effectively assess an AI's ability to follow instructions. Consider both the strengths and weaknesses of the prompt in this regard. "
    "Output your verdict as a score from 0 to 5:\n"
    "0 = Does not evaluate instruction-following ability.\n"
    "1 = Ineffective at evaluating instruction-following ability.\n"
    "2 = Somewhat effective at evaluating instruction-following ability.\n"
    "3 = Effective at evaluating simple instruction-following ability.\n"
    "4 = Effective at evaluating more complex instruction-following ability.\n"
    "5 = Effective at evaluating advanced instruction-following ability.\n\n"
    "Present your score in the following format:\n<score>[Your score from 0 to 5]</score>.\nDo NOT explain."
)
_MATH_SYS = (
    "You are tasked with determining whether a given user prompt requires an AI assistant to solve a math problem and apply mathematical logic and reasoning.\n\n"
    "Carefully analyze the user prompt and consider whether it requires mathematical problem-solving skills to answer correctly. Think about the following aspects:\n\n"
    "1. Does it require the application of a specific mathematical concept or formula?\n"
    "2. Does the prompt involve numerical calculations or algebraic manipulation or logical reasoning?\n"
    "3. Is there a clear mathematical problem to be solved?\n"
    "4. Would answering this prompt demonstrate proficiency in a specific area in mathematics?\n\n"
    'Output your verdict in the following format:"<decision>\n[yes/no]\n</decision>". Do NOT explain.'
)
_CREATIVE_SYS = (
    "You are tasked with determining whether a given user prompt is asking for creative writing. Creative writing is defined as any form of writing that goes beyond standard professional, journalistic, academic, or technical literature. "
    "It typically involves imagination, originality, and expression of thoughts and emotions. Creative writing can include, but is not limited to, the following formats:\n"
    "- Fiction (e.g., short stories, novels)\n"
    "- Poetry (e.g., sonnets, free verse)\n"
    "- Dramatic writing (e.g., screenplays, monologues, scripts)\n"
    "- Personal essays (focusing on subjective experiences or narrative storytelling)\n"
    "- Songs and lyrics\n\n"
    "Carefully analyze the user prompt and consider whether it primarily requires creative writing. Think about the following aspects:\n"
    "1. Does the prompt ask for fictional content, speculative scenarios, or the use of imagination to construct narratives?\n"
    "2. Does it encourage the expression of thoughts, emotions, or personal experiences beyond mere factual reporting or analysis?\n"
    "3. Is it asking for writing in a specific creative format (e.g., story, poem, script, etc)?\n"
    "4. Is the primary purpose of the prompt to foster creative expression or originality rather than information delivery, technical documentation, or analytical reasoning?\n"
    "5. Does the prompt request stylistic or rhetorical elements often associated with creative writing, such as metaphor, imagery, dialogue, etc?\n"
    "6. Does the prompt expect a response in natural language (e.g., sentences, paragraphs) rather than visual, mathematical, or non-linguistic output?\n\n"
    'Output your verdict as either "yes" or "no"in the following format:\n<decision>\n[yes/no]\n</decision>. Do NOT explain.'
)
_REFUSAL_SYS = (
    "You are tasked with determining if any of the given model responses are a refusal to answer. A refusal occurs when the model explicitly declines to answer or complete a task, "
    "due to reasons like safety, moderation, or model limitations (e.g. the user asks the model to search the web but it does not have that capability). "
    "You will be given the responces of 2 models, A and B and you are to determine if A refuses to answer, B refuses, both refuse, or neither refuse. "
    'Output your verdict in the following format:"<decision>\n[A/B/both/neither]\n</decision>". Do not respond with any additional information.'
)

LLM_TAGGERS: dict[str, LLMTagger] = {
    "hard_prompt": LLMTagger("hard_prompt", "criteria_v0.1", _HARD_SYS, "{PROMPT}", tuple(f"criteria_{c}" for c in CRITERIA) + ("category_hard_6",)),
    "if": LLMTagger("if", "if_v0.1", _IF_SYS, "<user_prompt>{PROMPT}</user_prompt>", ("if_score", "category_if")),
    "math": LLMTagger("math", "math_v0.1", _MATH_SYS, "<user_prompt>\n{PROMPT}\n</user_prompt>", ("category_math",)),
    "creative_writing": LLMTagger("creative_writing", "creative_writing_v0.1", _CREATIVE_SYS, "<user_prompt>\n{PROMPT}\n</user_prompt>", ("category_creative_writing",)),
    # FastChat's pre_process fills RESPONSE_B with response_a (a bug); we send response_b.
    "refusal": LLMTagger(
        "refusal", "refusal_v0.1", _REFUSAL_SYS,
        "<model_A_response>\n{RESPONSE_A}\n</model_A_response>\n<model_B_response>\n{RESPONSE_B}\n</model_B_response>",
        ("category_no_refusal",), needs_responses=True,
    ),
}


class TagCache:
    """Persistent answers of LLM taggers in a SQLite file (stdlib sqlite3).

    One row per key = sha256 of (tagger version, labeler model, messages); the raw answer is
    stored and parsed at read time, so a parser fix needs no new call. Unparseable answers are
    stored too (asking again at temperature 0 would give the same answer); failed calls are not.
    Parameters: path, a file (created with its folders) or ':memory:'.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, tagger TEXT, version TEXT, model TEXT, answer TEXT, created REAL)"
        )
        self._db.commit()

    @staticmethod
    def key(version: str, model: str, messages: Sequence[dict[str, str]]) -> str:
        """The cache key of one request (hex sha256)."""
        blob = json.dumps([version, model, list(messages)], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """Stored answers of those keys that are cached."""
        out: dict[str, str] = {}
        keys = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = f"SELECT key, answer FROM answers WHERE key IN ({','.join('?' * len(chunk))})"
                out.update(dict(self._db.execute(q, chunk).fetchall()))
        return out

    def put(self, key: str, tagger: str, version: str, model: str, answer: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)", (key, tagger, version, model, answer, time.time())
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class TagReport:
    """What one tagger did: battles tagged, unique prompts, answers taken from the cache, calls
    made, unparseable answers (value left NA, examples kept) and failed calls (NA, not cached)."""

    tagger: str
    version: str
    battles: int
    unique_prompts: int = 0
    cached: int = 0
    calls: int = 0
    unparseable: int = 0
    failed: int = 0
    examples: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.tagger} ({self.version}): {self.battles} battles, {self.unique_prompts} unique prompts, "
            f"{self.cached} cached, {self.calls} calls, {self.unparseable} unparseable, {self.failed} failed"
        )


ChatFn = Callable[[list[dict[str, str]]], Awaitable[str]]


def _chat_function(client: Any, tagger: LLMTagger, retry: Any) -> tuple[ChatFn, str]:
    """(async messages -> text, model name for the cache key) for a ModelConfig or a callable."""
    if hasattr(client, "base_url") and hasattr(client, "endpoint_model"):
        from openarena.providers import complete_chat

        async def call(messages: list[dict[str, str]]) -> str:
            res = await complete_chat(client, messages, retry=retry, temperature=0.0, max_tokens=tagger.max_tokens)
            return res.text

        return call, f"{client.base_url}|{client.endpoint_model}"
    if callable(client):
        name = getattr(client, "model_name", None) or getattr(client, "__qualname__", type(client).__name__)

        async def call2(messages: list[dict[str, str]]) -> str:
            out = client(messages)
            if asyncio.iscoroutine(out):
                out = await out
            return str(out)

        return call2, f"callable|{name}"
    raise DataError(f"cannot call a labeler of type {type(client).__name__}", field="client", expected="a providers.ModelConfig or an async function messages -> text")


def _fields(frame: pd.DataFrame, tagger: LLMTagger, source: str, max_chars: int) -> list[dict[str, str]]:
    if tagger.needs_responses:
        _require(frame, ("conversation_a", "conversation_b"), source, tagger.name)
        return [
            {
                "RESPONSE_A": "\n".join(message_texts(a, "assistant"))[:max_chars],
                "RESPONSE_B": "\n".join(message_texts(b, "assistant"))[:max_chars],
            }
            for a, b in zip(frame["conversation_a"], frame["conversation_b"])
        ]
    _require(frame, ("conversation_a",), source, tagger.name)
    return [{"PROMPT": prompt_text(c, max_chars)} for c in frame["conversation_a"]]


async def _run_llm(
    frame: pd.DataFrame,
    source: str,
    taggers: list[LLMTagger],
    client: Any,
    cache: TagCache,
    concurrency: int,
    progress: Callable[[int, int], object] | None,
    retry: Any,
    max_chars: int,
) -> tuple[dict[str, Any], list[TagReport]]:
    from openarena.providers import map_bounded

    columns: dict[str, Any] = {}
    reports: list[TagReport] = []
    jobs: list[tuple[LLMTagger, str, list[dict[str, str]], ChatFn, str]] = []
    per_tagger: list[tuple[LLMTagger, list[str], dict[str, str]]] = []
    for tagger in taggers:
        fn, model = _chat_function(client, tagger, retry)
        msgs = [tagger.messages(f) for f in _fields(frame, tagger, source, max_chars)]
        keys = [TagCache.key(tagger.version, model, m) for m in msgs]
        unique = dict(zip(keys, msgs))
        answers = cache.get_many(list(unique))
        rep = TagReport(tagger.name, tagger.version, len(frame), len(unique), cached=len(answers))
        reports.append(rep)
        per_tagger.append((tagger, keys, answers))
        for k, m in unique.items():
            if k not in answers:
                jobs.append((tagger, k, m, fn, model))
    total = sum(r.unique_prompts for r in reports)
    done_cached = sum(r.cached for r in reports)
    if progress is not None:
        progress(done_cached, total)

    async def one(job: tuple[LLMTagger, str, list[dict[str, str]], ChatFn, str]) -> str:
        tagger, key, messages, fn, model = job
        text = await fn(messages)
        cache.put(key, tagger.name, tagger.version, model, text)
        return text

    wrapped = None if progress is None else (lambda d, t: progress(done_cached + d, total))
    results = await map_bounded(one, jobs, concurrency, wrapped, return_exceptions=True) if jobs else []
    fresh: dict[str, str | BaseException] = {job[1]: res for job, res in zip(jobs, results)}
    for (tagger, keys, answers), rep in zip(per_tagger, reports):
        rep.calls = sum(1 for j in jobs if j[0] is tagger)
        parsed: dict[str, dict[str, Any] | None] = {}
        for k in dict.fromkeys(keys):
            ans = answers.get(k, fresh.get(k))
            if isinstance(ans, BaseException) or ans is None:
                rep.failed += 1
                if len(rep.errors) < 5:
                    rep.errors.append(str(ans).splitlines()[0][:300] if ans is not None else "no answer")
                if isinstance(ans, BaseException) and not isinstance(ans, OpenArenaError):
                    raise ans
                parsed[k] = None
                continue
            got = tagger.parse(ans)
            if got is None:
                rep.unparseable += 1
                if len(rep.examples) < 5:
                    rep.examples.append(ans[:300])
            parsed[k] = got
        for col in tagger.columns:
            vals = [parsed[k][col] if parsed[k] is not None else None for k in keys]
            dtype = "Int64" if col == "if_score" else "boolean"
            columns[col] = pd.array(vals, dtype=dtype)
    return columns, reports


def run_taggers(
    battles: BattleTable,
    taggers: Sequence[str] = DEFAULT_RULE_TAGGERS,
    *,
    client: Any = None,
    cache: TagCache | str | Path | None = None,
    concurrency: int = 8,
    progress: Callable[[int, int], object] | None = None,
    retry: Any = None,
    languages: Sequence[str] = COMMON_LANGUAGES,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
) -> tuple[BattleTable, list[TagReport]]:
    """Run taggers on the battles; returns the tagged table and one TagReport per LLM tagger.

    See :func:`tag_battles` for the parameters. The table gains one FilterStep per LLM
    tagger (removed 0, detail = :meth:`TagReport.summary`) so the provenance shows it.
    """
    names = list(dict.fromkeys(taggers))
    unknown = [t for t in names if t not in RULE_TAGGERS and t not in LLM_TAGGERS]
    if unknown:
        raise DataError(f"unknown tagger {unknown[0]!r}", battles.source, field="taggers", expected=", ".join([*RULE_TAGGERS, *LLM_TAGGERS]))
    writers: dict[str, str] = {}
    for t in names:
        cols = LLM_TAGGERS[t].columns if t in LLM_TAGGERS else {"math_rule": ("category_math",), "no_refusal": ("category_no_refusal",)}.get(t, ())
        for c in cols:
            if c in writers:
                raise DataError(f"taggers {writers[c]!r} and {t!r} both write {c!r}; choose one", battles.source, field="taggers")
            writers[c] = t
    frame = battles.frame.copy()
    source = battles.source
    for t in names:
        if t in RULE_TAGGERS:
            out = _tag_language(frame, source, languages) if t == "language" else RULE_TAGGERS[t](frame, source)
            for col, vals in out.items():
                frame[col] = vals
    llm = [LLM_TAGGERS[t] for t in names if t in LLM_TAGGERS]
    reports: list[TagReport] = []
    steps: list[FilterStep] = []
    if llm:
        if client is None:
            raise DataError(f"tagger {llm[0].name!r} needs an LLM endpoint", source, field="client", expected="client=ModelConfig(...) of an OpenAI-compatible server")
        own_cache = not isinstance(cache, TagCache)
        store = cache if isinstance(cache, TagCache) else TagCache(cache if cache is not None else ":memory:")
        try:
            cols, reports = asyncio.run(_run_llm(frame, source, llm, client, store, concurrency, progress, retry, max_prompt_chars))
        finally:
            if own_cache:
                store.close()
        for col, vals in cols.items():
            frame[col] = vals
        n = len(frame)
        steps = [FilterStep(f"tag:{r.tagger}", 0, n, r.summary()) for r in reports]
    table = battles.with_frame(frame)
    for s in steps:
        table = table.with_frame(table.frame, s)
    return table, reports


def tag_battles(
    battles: BattleTable,
    taggers: Sequence[str] = DEFAULT_RULE_TAGGERS,
    *,
    client: Any = None,
    cache: TagCache | str | Path | None = None,
    concurrency: int = 8,
    progress: Callable[[int, int], object] | None = None,
    retry: Any = None,
    languages: Sequence[str] = COMMON_LANGUAGES,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
) -> BattleTable:
    """Add category columns to the battles (see the module docstring for taggers and columns).

    Parameters:
        battles: N battles; rule taggers need conversation_a/b (and turn, conv_metadata when
            present), LLM taggers the conversations.
        taggers: names from :data:`RULE_TAGGERS` and :data:`LLM_TAGGERS`; default the rule
            taggers except math_rule. Two taggers writing the same column is an error.
        client: the labeler for LLM taggers: a :class:`openarena.providers.ModelConfig`
            (called with temperature 0 and the tagger's max_tokens, with the providers' retries),
            or an async (or plain) function ``messages -> text``.
        cache: a :class:`TagCache`, or the path of its SQLite file (None: in memory only).
        concurrency: LLM calls in flight at most.
        progress: called as ``progress(done, total)`` over the unique (tagger, prompt) requests,
            cached ones counted first.
        retry: a providers ``RetryPolicy`` (default: the providers' 3 attempts).
        languages: candidate languages of the ``language`` tagger.
        max_prompt_chars: prompts (and responses for ``refusal``) are cut at this length.
    Returns: a new BattleTable with the columns; boolean category columns are numpy bool for
        rule taggers and pandas 'boolean' (NA = unparseable or failed) for LLM taggers. Each LLM
        tagger adds a FilterStep ``tag:<name>`` (removed 0) whose detail gives the counts of
        cached, called, unparseable and failed requests (use :func:`run_taggers` for the
        :class:`TagReport` objects).
    Raises: DataError for an unknown tagger, a missing column, or an LLM tagger without client.
    A failed call (ProviderError after retries) is counted, never raised.
    Source: FastChat code_tagger.py, classify/category.py, criteria_labeling.py, label.py.
    """
    return run_taggers(
        battles, taggers, client=client, cache=cache, concurrency=concurrency, progress=progress,
        retry=retry, languages=languages, max_prompt_chars=max_prompt_chars,
    )[0]


# ============================================================================================
# FastChat category_tag -> our columns


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
    return run_taggers(battles, missing)[0] if missing else battles

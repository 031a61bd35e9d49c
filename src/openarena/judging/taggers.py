"""LLM category taggers: FastChat's labelling prompts sent to a model, their answers parsed,
cached and turned into category columns of a :class:`~openarena.data.battles.BattleTable`.

The rule taggers, the category columns and masks are :mod:`openarena.data.categories` (the data
layer calls no model); :func:`run_taggers` / :func:`tag_battles` run both kinds in one pass.

LLM taggers send FastChat's prompts verbatim (fastchat/serve/monitor/classify/category.py) to
any OpenAI-compatible endpoint through :mod:`openarena.providers` and parse the answer with
FastChat's regular expressions; where FastChat falls back to a default (no match, or several
different matches), we count the answer as *unparseable* and leave the value missing (NA):
it is reported, never guessed. Answers go through the one response cache of every LLM call
(:class:`openarena.providers.ResponseCache`, the judges' too), keyed by the endpoint and the
request body (model, messages with the tagger's prompt, temperature, max_tokens), so a re-run
costs no call and a changed prompt or labeler asks again; the raw answer is stored and parsed
at read time, so a parser fix needs no new call. Identical prompts in a run are asked once.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

import pandas as pd

from openarena.data.battles import BattleTable, FilterStep
from openarena.data.categories import (
    COMMON_LANGUAGES,
    CRITERIA,
    DEFAULT_RULE_TAGGERS,
    MAX_PROMPT_CHARS,
    RULE_TAGGERS,
    apply_rule_taggers,
    prompt_text,
    require_columns,
)
from openarena.data.conversations import message_texts
from openarena.errors import DataError, OpenArenaError

if TYPE_CHECKING:
    from openarena.providers.cache import ResponseCache

__all__ = [
    "LLM_TAGGERS",
    "LLMTagger",
    "TagReport",
    "run_taggers",
    "tag_battles",
]


@dataclass(frozen=True)
class LLMTagger:
    """One FastChat LLM category: its prompt, the parser of the answer, and the columns.

    Attributes: name (tagger name), version (FastChat's name_tag, shown in the reports; the
    cache key holds the prompt itself, so a changed prompt is asked again whatever its version),
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


Messages = list[dict[str, str]]
#: async messages -> (answer text, True when it came from the cache)
AskFn = Callable[[Messages], Awaitable[tuple[str, bool]]]


def _labeler(client: Any, tagger: LLMTagger, retry: Any, cache: ResponseCache | None) -> tuple[Callable[[Messages], str], AskFn]:
    """(request key, async ask) for a ModelConfig (through the response cache) or a callable.

    A ModelConfig is asked with temperature 0 and the tagger's max_tokens by
    :func:`openarena.providers.cache.cached_complete_chat`; the key is
    :meth:`ResponseCache.key` of that request. A callable is asked directly (never cached: the
    cache keys requests to an endpoint); its key only merges identical messages within a run.
    Raises: DataError for another type, or a callable with a cache.
    """
    if hasattr(client, "base_url") and hasattr(client, "endpoint_model"):
        from openarena.providers.cache import ResponseCache, cached_complete_chat

        overrides = {"temperature": 0.0, "max_tokens": tagger.max_tokens}

        def key(messages: Messages) -> str:
            return ResponseCache.key(client, messages, **overrides)

        async def ask(messages: Messages) -> tuple[str, bool]:
            res = await cached_complete_chat(client, messages, cache, retry=retry, **overrides)
            return res.text, res.cached

        return key, ask
    if callable(client):
        if cache is not None:
            raise DataError("a response cache needs a labeler endpoint, not a function", field="cache", expected="cache=None with a function, or client=ModelConfig(...)")

        def key2(messages: Messages) -> str:
            return json.dumps(messages, ensure_ascii=False, sort_keys=True)

        async def ask2(messages: Messages) -> tuple[str, bool]:
            out = client(messages)
            if asyncio.iscoroutine(out):
                out = await out
            return str(out), False

        return key2, ask2
    raise DataError(f"cannot call a labeler of type {type(client).__name__}", field="client", expected="a providers.ModelConfig or an async function messages -> text")


def _fields(frame: pd.DataFrame, tagger: LLMTagger, source: str, max_chars: int) -> list[dict[str, str]]:
    if tagger.needs_responses:
        require_columns(frame, ("conversation_a", "conversation_b"), source, tagger.name)
        return [
            {
                "RESPONSE_A": "\n".join(message_texts(a, "assistant"))[:max_chars],
                "RESPONSE_B": "\n".join(message_texts(b, "assistant"))[:max_chars],
            }
            for a, b in zip(frame["conversation_a"], frame["conversation_b"])
        ]
    require_columns(frame, ("conversation_a",), source, tagger.name)
    return [{"PROMPT": prompt_text(c, max_chars)} for c in frame["conversation_a"]]


async def _run_llm(
    frame: pd.DataFrame,
    source: str,
    taggers: list[LLMTagger],
    client: Any,
    cache: ResponseCache | None,
    concurrency: int,
    progress: Callable[[int, int], object] | None,
    retry: Any,
    max_chars: int,
) -> tuple[dict[str, Any], list[TagReport]]:
    from openarena.providers import map_bounded

    columns: dict[str, Any] = {}
    reports: list[TagReport] = []
    jobs: list[tuple[LLMTagger, str, Messages, AskFn]] = []  # one per unique request
    per_tagger: list[tuple[LLMTagger, list[str]]] = []
    for tagger in taggers:
        key, ask = _labeler(client, tagger, retry, cache)
        msgs = [tagger.messages(f) for f in _fields(frame, tagger, source, max_chars)]
        keys = [key(m) for m in msgs]
        unique = dict(zip(keys, msgs))
        reports.append(TagReport(tagger.name, tagger.version, len(frame), len(unique)))
        per_tagger.append((tagger, keys))
        jobs.extend((tagger, k, m, ask) for k, m in unique.items())
    if progress is not None:
        progress(0, len(jobs))

    async def one(job: tuple[LLMTagger, str, Messages, AskFn]) -> tuple[str, bool]:
        return await job[3](job[2])

    results = await map_bounded(one, jobs, concurrency, progress, return_exceptions=True) if jobs else []
    answers: dict[tuple[str, str], tuple[str, bool] | BaseException] = {(job[0].name, job[1]): res for job, res in zip(jobs, results)}
    for (tagger, keys), rep in zip(per_tagger, reports):
        parsed: dict[str, dict[str, Any] | None] = {}
        for k in dict.fromkeys(keys):
            ans = answers[tagger.name, k]
            if isinstance(ans, BaseException):
                rep.calls += 1
                rep.failed += 1
                if len(rep.errors) < 5:
                    rep.errors.append(str(ans).splitlines()[0][:300])
                if not isinstance(ans, OpenArenaError):
                    raise ans
                parsed[k] = None
                continue
            text, cached = ans
            rep.cached += cached
            rep.calls += not cached
            got = tagger.parse(text)
            if got is None:
                rep.unparseable += 1
                if len(rep.examples) < 5:
                    rep.examples.append(text[:300])
            parsed[k] = got
        for col in tagger.columns:
            vals = [parsed[k][col] if parsed[k] is not None else None for k in keys]
            dtype = "Int64" if col == "if_score" else "boolean"
            columns[col] = pd.array(vals, dtype=dtype)
    return columns, reports


def _open_cache(cache: ResponseCache | str | os.PathLike[str] | None) -> ResponseCache | None:
    """The given ResponseCache, or one opened on the path (its folders made), or None."""
    if cache is None or not isinstance(cache, (str, os.PathLike)):
        return cache
    from openarena.providers.cache import ResponseCache

    Path(cache).parent.mkdir(parents=True, exist_ok=True)
    return ResponseCache(cache)


def run_taggers(
    battles: BattleTable,
    taggers: Sequence[str] = DEFAULT_RULE_TAGGERS,
    *,
    client: Any = None,
    cache: ResponseCache | str | os.PathLike[str] | None = None,
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
    apply_rule_taggers(frame, source, names, languages)
    llm = [LLM_TAGGERS[t] for t in names if t in LLM_TAGGERS]
    reports: list[TagReport] = []
    steps: list[FilterStep] = []
    if llm:
        if client is None:
            raise DataError(f"tagger {llm[0].name!r} needs an LLM endpoint", source, field="client", expected="client=ModelConfig(...) of an OpenAI-compatible server")
        store = _open_cache(cache)
        try:
            cols, reports = asyncio.run(_run_llm(frame, source, llm, client, store, concurrency, progress, retry, max_prompt_chars))
        finally:
            if store is not None and store is not cache:
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
    cache: ResponseCache | str | os.PathLike[str] | None = None,
    concurrency: int = 8,
    progress: Callable[[int, int], object] | None = None,
    retry: Any = None,
    languages: Sequence[str] = COMMON_LANGUAGES,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
) -> BattleTable:
    """Add category columns to the battles (the taggers and their columns: :mod:`openarena.data.categories`).

    Parameters:
        battles: N battles; rule taggers need conversation_a/b (and turn, conv_metadata when
            present), LLM taggers the conversations.
        taggers: names from :data:`RULE_TAGGERS` and :data:`LLM_TAGGERS`; default the rule
            taggers except math_rule. Two taggers writing the same column is an error.
        client: the labeler for LLM taggers: a :class:`openarena.providers.ModelConfig`
            (called with temperature 0 and the tagger's max_tokens, with the providers' retries),
            or an async (or plain) function ``messages -> text``.
        cache: the response cache of all LLM calls, :class:`openarena.providers.ResponseCache`
            (the judges' too), or the path of its SQLite file (created with its folders);
            None: no cache (identical requests of the run are still asked once). Only with a
            ModelConfig client.
        concurrency: LLM calls in flight at most.
        progress: called as ``progress(done, total)`` over the unique (tagger, prompt) requests:
            ``(0, total)`` first, then after each request, answered from the cache or not.
        retry: a providers ``RetryPolicy`` (default: the providers' 3 attempts).
        languages: candidate languages of the ``language`` tagger.
        max_prompt_chars: prompts (and responses for ``refusal``) are cut at this length.
    Returns: a new BattleTable with the columns; boolean category columns are numpy bool for
        rule taggers and pandas 'boolean' (NA = unparseable or failed) for LLM taggers. Each LLM
        tagger adds a FilterStep ``tag:<name>`` (removed 0) whose detail gives the counts of
        cached, called, unparseable and failed requests (use :func:`run_taggers` for the
        :class:`TagReport` objects).
    Raises: DataError for an unknown tagger, a missing column, an LLM tagger without client, or
        a cache with a function client.
    A failed call (ProviderError after retries) is counted, never raised.
    Source: FastChat code_tagger.py, classify/category.py, criteria_labeling.py, label.py.
    """
    return run_taggers(
        battles, taggers, client=client, cache=cache, concurrency=concurrency, progress=progress,
        retry=retry, languages=languages, max_prompt_chars=max_prompt_chars,
    )[0]

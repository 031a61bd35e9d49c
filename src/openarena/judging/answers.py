"""Answers of registry models to a question set: generation, storage and reading (the answer
record itself, :class:`~openarena.judging.answer_records.Answer`, and its parser are
:mod:`openarena.judging.answer_records`, shared with the reference answers of
:mod:`openarena.judging.questions`).

Generation (:func:`generate_answers`) calls one model of the registry on every question that
has no answer yet, with at most ``concurrency`` calls in flight, retries with exponential
backoff (the providers' :class:`~openarena.providers.RetryPolicy`), token counts from the
server's usage report and cost from the registry price (USD per million tokens). Each finished
answer is appended to ``<out_dir>/<model>.jsonl`` and flushed to disk at once
(:class:`~openarena.judging.store.JsonlLog`), so a crash or Ctrl-C loses nothing finished and a
re-run only fills the gaps. With a :class:`~openarena.providers.ResponseCache`, every finished
*call* is kept too, so the first turn of a two-turn question is not asked again either. Failed
questions (after the retries) are reported, never written.

File format: Arena-Hard-Auto's answer records (``uid, ans_id, model, messages, tstamp,
metadata``; assistant content as ``{"answer": text}``), so the files can be read by
arena-hard-auto's own scripts, plus ``usage`` (tokens, cost, latency, attempts) and
``generation`` (endpoint, sampling parameters, package version). ``metadata`` holds the style
features of arena-hard v2 (``token_len`` with o200k_base, header/list/bold counts), computed by
:func:`openarena.data.style.answer_style`, the same code as the ratings engine's style control.

:func:`read_answers` reads these files and FastChat's (``question_id, model_id,
choices[0].turns``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openarena import __version__
from openarena.errors import DataError
from openarena.judging.answer_records import METADATA_ENCODING, Answer, answer_metadata, parse_answer_record
from openarena.judging.questions import Question
from openarena.judging.store import JsonlLog, read_jsonl

__all__ = [
    "AnswerFailure",
    "AnswerReport",
    "agenerate_answers",
    "answer_path",
    "generate_answers",
    "read_answers",
]

def read_answers(path: str | os.PathLike[str], models: Sequence[str] | None = None) -> dict[str, dict[str, Answer]]:
    """Answers from a JSONL file or a folder of them (``*.jsonl``).

    Parameters: path; models, keep only these model names (all when None).
    Returns: {model: {uid: Answer}}; when a model answered a question twice, the last record
    wins (a re-generated answer replaces the old one).
    Raises: DataError for an unreadable path or malformed record.
    """
    p = Path(path)
    files = sorted(p.glob("*.jsonl")) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise DataError("no *.jsonl answer files", str(p), expected="a folder of answer files")
    out: dict[str, dict[str, Answer]] = {}
    for f in files:
        for i, rec in enumerate(read_jsonl(f, tolerate_torn_tail=True)):
            ans = parse_answer_record(rec, str(f), i)
            if models is None or ans.model in models:
                out.setdefault(ans.model, {})[ans.uid] = ans
    return out


def answer_path(out_dir: str | os.PathLike[str], model_name: str) -> Path:
    """``<out_dir>/<model>.jsonl``; characters that cannot be in a file name become '_'."""
    return Path(out_dir) / (re.sub(r"[\\/:*?\"<>|\x00-\x1f]", "_", model_name) + ".jsonl")


@dataclass(frozen=True)
class AnswerFailure:
    """A question left without answer: uid, error kind (ProviderError kind), message, attempts."""

    uid: str
    kind: str
    message: str
    attempts: int = 1


@dataclass
class AnswerReport:
    """What one :func:`generate_answers` run did.

    Attributes: model; path, the answer file; total, questions asked for; existing, already
    answered before the run (skipped); generated, answered in this run; failures, the
    questions still unanswered (after retries); calls, HTTP calls that returned an answer
    (cache hits excluded); cache_hits; prompt_tokens, completion_tokens and cost_usd of the
    calls made in this run (cost = tokens x registry price / 1e6; 0 without a price);
    elapsed_s.
    """

    model: str
    path: Path
    total: int
    existing: int = 0
    generated: int = 0
    failures: list[AnswerFailure] = field(default_factory=list)
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every question has an answer."""
        return not self.failures and self.existing + self.generated == self.total


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16] if text else None


async def agenerate_answers(
    model: Any,
    questions: Iterable[Question],
    out_dir: str | os.PathLike[str],
    *,
    concurrency: int = 8,
    retry: Any = None,
    timeout_s: float | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    temperature_by_category: Mapping[str, float] | None = None,
    cache: Any = None,
    progress: Callable[[int, int], object] | None = None,
    encoding: str = METADATA_ENCODING,
    fsync: bool = True,
) -> AnswerReport:
    """Answer every question not yet answered by ``model``; see :func:`generate_answers`."""
    from openarena.providers.cache import cached_complete_chat
    from openarena.providers.client import ProviderError

    t0 = time.perf_counter()
    questions = list(questions)
    path = answer_path(out_dir, model.name)
    log = JsonlLog(path, key=lambda r: (r["model"], str(r["uid"])), fsync=fsync)
    todo = [q for q in questions if (model.name, q.uid) not in log]
    report = AnswerReport(model.name, path, len(questions), existing=len(questions) - len(todo))
    generation = {
        "endpoint_model": model.endpoint_model,
        "base_url": model.base_url,
        "temperature": temperature if temperature is not None else model.temperature,
        "max_tokens": max_tokens if max_tokens is not None else model.max_tokens,
        "top_p": model.top_p,
        "seed": model.seed,
        "system_prompt_sha256": _sha(model.system_prompt),
        "openarena_version": __version__,
    }

    async def one(q: Question) -> AnswerFailure | None:
        overrides: dict[str, Any] = {}
        if temperature is not None:
            overrides["temperature"] = temperature
        elif temperature_by_category and q.category in temperature_by_category:
            overrides["temperature"] = temperature_by_category[q.category]
        if max_tokens is not None:
            overrides["max_tokens"] = max_tokens
        messages: list[dict[str, Any]] = []
        out_messages: list[dict[str, Any]] = []
        texts: list[str] = []
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "latency_s": 0.0,
                 "attempts": 0, "usage_estimated": False, "cached_turns": 0}
        for turn in q.turns:
            messages.append({"role": "user", "content": turn})
            try:
                res = await cached_complete_chat(model, messages, cache, retry=retry, timeout_s=timeout_s, **overrides)
            except ProviderError as e:
                return AnswerFailure(q.uid, e.kind, e.message, e.attempts)
            messages.append({"role": "assistant", "content": res.text})
            out_messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": {"answer": res.text}}]
            texts.append(res.text)
            cost = model.cost(res.prompt_tokens, res.completion_tokens)
            usage["prompt_tokens"] += res.prompt_tokens
            usage["completion_tokens"] += res.completion_tokens
            usage["cost_usd"] += cost
            usage["latency_s"] += res.latency_s
            usage["attempts"] += res.attempts
            usage["usage_estimated"] = usage["usage_estimated"] or res.usage_estimated
            if res.cached:
                usage["cached_turns"] += 1
                report.cache_hits += 1
            else:
                report.calls += 1
                report.prompt_tokens += res.prompt_tokens
                report.completion_tokens += res.completion_tokens
                report.cost_usd += cost
        record = {
            "uid": q.uid,
            "ans_id": uuid.uuid4().hex,
            "model": model.name,
            "messages": out_messages,
            "tstamp": time.time(),
            "metadata": answer_metadata(texts, encoding),
            "category": q.category,
            "usage": usage,
            "generation": generation | ({"temperature": overrides["temperature"]} if "temperature" in overrides else {}),
        }
        log.append(record)
        report.generated += 1
        return None

    from openarena.providers.client import map_bounded

    if todo:
        results = await map_bounded(one, todo, concurrency, progress)
        report.failures = [r for r in results if isinstance(r, AnswerFailure)]
    report.elapsed_s = time.perf_counter() - t0
    return report


def generate_answers(
    model: Any,
    questions: Iterable[Question],
    out_dir: str | os.PathLike[str],
    **kwargs: Any,
) -> AnswerReport:
    """Generate the missing answers of one registry model and append them to its answer file.

    Parameters:
        model: a :class:`~openarena.providers.ModelConfig` (a registry entry).
        questions: the questions (a QuestionSet or any iterable of Question); multi-turn
            questions are asked turn by turn, each turn seeing the previous answers.
        out_dir: folder of the answer files (``<out_dir>/<model>.jsonl``).
        concurrency: questions in flight at once (>= 1).
        retry: RetryPolicy of each call (default: 3 attempts, exponential backoff with jitter).
        timeout_s: per-attempt timeout (default: the model's timeout_s).
        temperature, max_tokens: override the model's settings for every call.
        temperature_by_category: temperature per question category when ``temperature`` is
            not given (e.g. :data:`openarena.judging.questions.MT_BENCH_TEMPERATURE`).
        cache: a ResponseCache (every finished call is kept, so a killed run repeats no call),
            or None.
        progress: ``progress(done, total)`` after each question of this run finishes.
        encoding: tokenizer of ``metadata.token_len`` (o200k_base as arena-hard v2).
        fsync: flush each answer to the disk (default true).
    Returns: AnswerReport (counts, failures, tokens, cost in USD).
    Raises: ValueError if concurrency < 1; KeyboardInterrupt / CancelledError pass through
        after the finished answers are on disk. Provider failures are not raised: they are
        in ``report.failures``.
    """
    return asyncio.run(agenerate_answers(model, questions, out_dir, **kwargs))

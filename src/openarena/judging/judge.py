"""The judge: one model of the registry, a prompt template and fixed settings; one call with one
retry when the output has no usable label; the provenance written with every judgment; and
:func:`run_judgments`, the batch of calls behind pairwise judging and single grading.

Retry on an unparseable output: as arena-hard-auto's gen_judgment.py does, the judge's output
is appended to the conversation with the message "continue your judgment and finish by
outputting a final verdict label" (for ratings: "... a final rating in the format
[[rating]]"), and the continuation is parsed. When the output has several different labels
(ambiguous) or a label outside the allowed set, the same question is asked again from scratch
(bypassing the response cache, which holds the first output of that very request). Either way there is one retry; what is still
unparseable after it is recorded with its status and reason, counted and reported, never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from openarena import __version__
from openarena.judging.parse import Parsed
from openarena.judging.prompts import JudgePrompt
from openarena.judging.store import JsonlLog

__all__ = ["CONTINUE_RATING", "CONTINUE_VERDICT", "JudgeOutcome", "JudgeSettings", "ask_judge", "run_judgments"]

T = TypeVar("T")

#: arena-hard-auto gen_judgment.py, the follow-up when no verdict label was found.
CONTINUE_VERDICT = "continue your judgment and finish by outputting a final verdict label"
#: The same follow-up for single-answer grading (our wording, same idea).
CONTINUE_RATING = 'continue your judgment and finish by outputting a final rating in the format "[[rating]]"'


@dataclass(frozen=True)
class JudgeSettings:
    """A judge model and how it is called.

    Attributes: model, the registry entry (ModelConfig); temperature (default 0, as
    Arena-Hard v0.1 and MT-Bench); max_tokens (None: the prompt's own, 4096 for Arena-Hard,
    2048 for MT-Bench); seed (sent when not None); retry, the RetryPolicy of each HTTP call
    (default 3 attempts with backoff); timeout_s, per attempt (default the model's);
    rating_rule, the rating parser rule (see :func:`openarena.judging.parse.parse_rating`);
    retry_unparseable, ask once more when the output has no usable label (default true).
    """

    model: Any
    temperature: float | None = 0.0
    max_tokens: int | None = None
    seed: int | None = None
    retry: Any = None
    timeout_s: float | None = None
    rating_rule: str = "openarena"
    retry_unparseable: bool = True

    @property
    def name(self) -> str:
        return self.model.name

    def overrides(self, prompt: JudgePrompt) -> dict[str, Any]:
        """Request fields sent with every judge call (temperature, max_tokens, seed)."""
        out: dict[str, Any] = {"max_tokens": self.max_tokens or prompt.max_tokens}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def provenance(self, prompt: JudgePrompt) -> dict[str, Any]:
        """What is recorded with every judgment: judge model (registry name, endpoint model,
        base URL), temperature, max_tokens, seed, top_p, extra_body (e.g. reasoning effort;
        arena-hard-auto#77: a judge's settings decide its scores), prompt name + sha256 + source, parser rule
        and the package version."""
        ov = self.overrides(prompt)
        return {
            "model": self.model.name,
            "endpoint_model": self.model.endpoint_model,
            "base_url": self.model.base_url,
            "temperature": ov.get("temperature", self.model.temperature),
            "max_tokens": ov["max_tokens"],
            "seed": ov.get("seed", self.model.seed),
            "top_p": getattr(self.model, "top_p", None),
            "extra_body": dict(getattr(self.model, "extra_body", None) or {}) or None,
            "prompt": prompt.name,
            "prompt_sha256": prompt.sha256,
            "prompt_source": prompt.source,
            "rating_rule": self.rating_rule if prompt.output_format == "[[rating]]" else None,
            "openarena_version": __version__,
        }


@dataclass
class JudgeOutcome:
    """The result of asking the judge once (plus at most one retry).

    Attributes: parsed, the final Parsed; outputs, the judge's texts in order (the first
    output, then the retry's); retried; error, 'kind: message' of a failed call (then parsed
    has status 'error' and the judgment must not be recorded as done); calls, HTTP calls
    made (cache hits excluded); cached, calls answered by the cache; prompt_tokens,
    completion_tokens, cost_usd (this run's calls), latency_s; served_model and
    system_fingerprint, what the server reported for the last answer (None when it did not).
    """

    parsed: Parsed
    outputs: list[str] = field(default_factory=list)
    retried: bool = False
    error: str | None = None
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    served_model: str | None = None
    system_fingerprint: str | None = None

    def usage(self) -> dict[str, Any]:
        """Calls, cache hits, tokens, cost (USD) and latency (s), as stored with a judgment."""
        return {"calls": self.calls, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
                "latency_s": round(self.latency_s, 4)}


async def ask_judge(
    settings: JudgeSettings,
    prompt: JudgePrompt,
    messages: Sequence[dict[str, Any]],
    parser: Callable[[str], Parsed],
    cache: Any = None,
) -> JudgeOutcome:
    """Ask the judge, parse its output, retry once if unparseable.

    Parameters: settings; prompt, the template the messages were rendered from (for the
    request settings); messages, the rendered system + user messages; parser, text -> Parsed;
    cache, a ResponseCache or None.
    Returns: JudgeOutcome (never raises ProviderError: a failed call is in ``error``).
    """
    from openarena.providers.cache import cached_complete_chat
    from openarena.providers.client import ProviderError

    out = JudgeOutcome(Parsed(None, "error", "not asked"))
    overrides = settings.overrides(prompt)

    async def call(msgs: list[dict[str, Any]], use_cache: bool = True) -> str | None:
        t0 = time.perf_counter()
        try:
            res = await cached_complete_chat(settings.model, msgs, cache if use_cache else None, retry=settings.retry,
                                             timeout_s=settings.timeout_s, **overrides)
        except ProviderError as e:
            out.error = f"{e.kind}: {e.message}" + (f" (after {e.attempts} attempts)" if e.attempts > 1 else "")
            out.parsed = Parsed(None, "error", out.error)
            return None
        out.latency_s += time.perf_counter() - t0
        out.served_model = res.raw_model
        out.system_fingerprint = res.system_fingerprint
        if res.cached:
            out.cached += 1
        else:
            out.calls += 1
            out.prompt_tokens += res.prompt_tokens
            out.completion_tokens += res.completion_tokens
            out.cost_usd += settings.model.cost(res.prompt_tokens, res.completion_tokens)
        out.outputs.append(res.text)
        return res.text

    msgs = [dict(m) for m in messages]
    text = await call(msgs)
    if text is None:
        return out
    out.parsed = parser(text)
    if out.parsed.ok or not settings.retry_unparseable:
        return out
    out.retried = True
    if out.parsed.retryable:
        follow = CONTINUE_RATING if prompt.output_format == "[[rating]]" else CONTINUE_VERDICT
        again = await call(msgs + [{"role": "assistant", "content": text}, {"role": "user", "content": follow}])
    else:
        # ambiguous / invalid: ask the same question again, past the cache (which holds the
        # first output of this very request)
        again = await call(msgs, use_cache=False)
    if again is None:
        out.parsed = Parsed(None, "error", out.error or "retry failed")
        return out
    retry_parsed = parser(again)
    if retry_parsed.ok:
        out.parsed = retry_parsed
    else:
        out.parsed = Parsed(None, retry_parsed.status,
                            f"{out.parsed.reason}; after one retry: {retry_parsed.reason}", retry_parsed.matches)
    return out


async def run_judgments(
    settings: JudgeSettings,
    tasks: Sequence[T],
    prepare: Callable[[T], tuple[JudgePrompt, list[dict[str, str]], Callable[[str], Parsed]]],
    fields: Callable[[T, JudgeOutcome], dict[str, Any]],
    failure: Callable[[T, str], Any],
    *,
    log: JsonlLog,
    report: Any,
    provenance: Mapping[str, dict[str, Any]],
    cache: Any = None,
    concurrency: int = 8,
    progress: Callable[[int, int], object] | None = None,
) -> int:
    """Ask the judge once per task, at most ``concurrency`` calls in flight, and append one
    judgment record per answered call (what pairwise judging and single grading share).

    Parameters:
        settings: the judge; tasks: the judgments to make (any objects).
        prepare: ``task -> (prompt, messages, parser)``, called when the task starts (it renders
            the template, so a missing field is raised then).
        fields: ``(task, outcome) -> dict``, the record's own leading fields (uid, model, ...);
            the record goes on with status, reason, retried, judgment (the judge's outputs),
            user_prompt (the last message), judge (``provenance[prompt.name]`` plus the
            served_model and system_fingerprint the server reported), usage
            (:meth:`JudgeOutcome.usage`) and tstamp (Unix seconds).
        failure: ``(task, 'kind: message') -> entry`` appended to ``report.failures`` when the
            call fails; nothing is written then, so a re-run asks again.
        log: the judgment file; report: gains each call's calls, cache_hits, prompt_tokens,
            completion_tokens and cost_usd, and counts ``retried`` and ``unparseable`` records.
        provenance: {prompt name: :meth:`JudgeSettings.provenance`}; cache: a ResponseCache or
            None; progress: ``progress(done, total)`` after each task.
    Returns: the number of records written.
    Raises: what ``prepare`` raises (e.g. DataError for a template field that is not
        available), ValueError if concurrency < 1 (when there are tasks); KeyboardInterrupt
        passes through with the finished records on disk.
    Source: the judging loops of arena-hard-auto gen_judgment.py and FastChat gen_judgment.py.
    """
    from openarena.providers.client import map_bounded

    written = 0

    async def one(task: T) -> None:
        nonlocal written
        prompt, messages, parser = prepare(task)
        out = await ask_judge(settings, prompt, messages, parser, cache)
        report.calls += out.calls
        report.cache_hits += out.cached
        report.prompt_tokens += out.prompt_tokens
        report.completion_tokens += out.completion_tokens
        report.cost_usd += out.cost_usd
        if out.error is not None:
            report.failures.append(failure(task, out.error))
            return
        log.append({
            **fields(task, out),
            "status": out.parsed.status,
            "reason": out.parsed.reason,
            "retried": out.retried,
            "judgment": out.outputs,
            "user_prompt": messages[-1]["content"],
            "judge": {**provenance[prompt.name], "served_model": out.served_model,
                      "system_fingerprint": out.system_fingerprint},
            "usage": out.usage(),
            "tstamp": time.time(),
        })
        written += 1
        report.retried += int(out.retried)
        report.unparseable += int(not out.parsed.ok)

    if tasks:
        await map_bounded(one, tasks, concurrency, progress)
    return written

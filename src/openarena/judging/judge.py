"""The judge: one model of the registry, a prompt template and fixed settings; one call with one
retry when the output has no usable label; and the provenance written with every judgment.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openarena import __version__
from openarena.judging.parse import Parsed
from openarena.judging.prompts import JudgePrompt

__all__ = ["CONTINUE_RATING", "CONTINUE_VERDICT", "JudgeOutcome", "JudgeSettings", "ask_judge"]

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
        base URL), temperature, max_tokens, seed, prompt name + sha256 + source, parser rule
        and the package version."""
        ov = self.overrides(prompt)
        return {
            "model": self.model.name,
            "endpoint_model": self.model.endpoint_model,
            "base_url": self.model.base_url,
            "temperature": ov.get("temperature", self.model.temperature),
            "max_tokens": ov["max_tokens"],
            "seed": ov.get("seed", self.model.seed),
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
    completion_tokens, cost_usd (this run's calls), latency_s.
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

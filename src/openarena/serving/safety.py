"""Trust and safety of the web arena: CSRF, rate limits, sanitised markdown, identity leaks and
the optional moderation call.

- CSRF: every state-changing request is a ``POST`` with a JSON body and the header
  ``X-CSRF-Token`` equal to an HMAC of the session id (the page carries it in a meta tag); a
  cross-site form cannot set that header, and a request whose ``Origin`` is another site is
  refused as well (OWASP CSRF cheat sheet: synchronizer token + origin check).
- Rate limits: token buckets per IP and per session (:class:`RateLimiter`), in Redis shared by
  every worker (:mod:`openarena.serving.shared_state`), in memory with one worker.
- Output: model answers are rendered server-side as CommonMark (markdown-it-py, raw HTML
  disabled so ``<script>`` stays text) and the HTML is sanitised by nh3 (Ammonia): an allow-list
  of tags and attributes, only http(s)/mailto links, ``rel="noopener noreferrer nofollow"``.
  The page only ever inserts this HTML; a Content-Security-Policy without inline scripts is the
  second line of defence.
- Identity leaks: :func:`identity_leak` reuses the data layer's curation rule
  (:func:`openarena.data.curation.identity_leak`, FastChat's IDENTITY_WORDS as substrings) plus
  the registry's own names, model ids and organisations as whole words.
- Moderation: :class:`Moderator` calls an OpenAI-compatible ``/v1/moderations`` endpoint when
  configured.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

__all__ = [
    "Moderator",
    "RateLimiter",
    "check_origin",
    "csrf_token",
    "identity_leak",
    "identity_words",
    "render_markdown",
    "verify_csrf",
]


# ---------------------------------------------------------------------------------------------
# CSRF


@lru_cache(maxsize=8192)
def csrf_token(secret: bytes, session_id: str) -> str:
    """The session's CSRF token: hex HMAC-SHA256(secret, 'csrf:' + session_id). Cached (a pure
    function; every API call of a session checks it)."""
    return hmac.new(secret, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def verify_csrf(secret: bytes, session_id: str, token: str | None) -> bool:
    """True if ``token`` is the session's CSRF token (constant-time comparison)."""
    return bool(token) and hmac.compare_digest(csrf_token(secret, session_id), token)


def check_origin(origin: str | None, host: str | None) -> bool:
    """True when ``Origin`` is absent or names the same host[:port] as the request's Host."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


# ---------------------------------------------------------------------------------------------
# Rate limits


class RateLimiter:
    """Per-minute limits by kind (``limits = {kind: per_minute}``, 0 or less disables a kind)
    over a :class:`~openarena.serving.shared_state.SharedState`: token buckets of
    ``per_minute`` tokens refilled at ``per_minute / 60`` per second, in Redis when the
    workers share one (so N workers allow the limit, not N times it), else in this process.
    """

    def __init__(self, limits: dict[str, float], shared: Any = None) -> None:
        from openarena.serving.shared_state import LocalState

        self.limits = dict(limits)
        self.shared = shared if shared is not None else LocalState()

    async def take(self, items: Sequence[tuple[str, str]]) -> float:
        """Take one token from the bucket of every ``(kind, key)`` of ``items``, all or none.
        Returns: 0.0 if allowed, else the seconds until the request would be allowed.
        Raises: SharedStateError when the shared state (Redis) fails."""
        return await self.shared.hit([(f"{kind}:{key}", self.limits.get(kind, 0), 60.0) for kind, key in items])


# ---------------------------------------------------------------------------------------------
# Markdown


_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}
_ALLOWED_ATTRS = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}
# classes only where the page needs them: math markers, table column alignment; code keeps its
# language-* class (any) for highlighting.
_ALIGN = {"left", "center", "right"}
_ALLOWED_CLASSES = {
    "span": {"math", "inline", "block"}, "div": {"math", "block"},
    "th": {f"align-{a}" for a in _ALIGN}, "td": {f"align-{a}" for a in _ALIGN},
}


def _math(tokens, idx, options, env, display: bool) -> str:
    from markdown_it.common.utils import escapeHtml

    tag = "div" if display and tokens[idx].block else "span"
    kind = "block" if display else "inline"
    return f'<{tag} class="math {kind}">{escapeHtml(tokens[idx].content.strip())}</{tag}>' + ("\n" if tag == "div" else "")


def _align_classes(state) -> None:
    """Table column alignment as a class (``align-left|center|right``) instead of markdown-it's
    ``style="text-align:..."``, which the page's Content-Security-Policy (style-src 'self') would block."""
    for tok in state.tokens:
        if tok.type in ("th_open", "td_open"):
            style = tok.attrGet("style") or ""
            if style.startswith("text-align:"):
                align = style.split(":", 1)[1].strip()
                tok.attrs.pop("style", None)
                if align in _ALIGN:
                    tok.attrSet("class", f"align-{align}")


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    """CommonMark + tables + strikethrough, raw HTML off (an answer's ``<script>`` is text), and
    TeX math as models write it: ``$...$`` and ``$$...$$`` (mdit-py-plugins dollarmath, with
    Pandoc's rules so that prices such as "$5 and $10" stay text: no space inside the dollars,
    no digit right after the closing one) and ``\\(...\\)``, ``\\[...\\]`` (texmath, brackets).
    Math comes out as ``<span class="math inline">`` / ``<div class="math block">`` holding
    the TeX source as escaped text, untouched by markdown (``\\\\``, ``_``, ``*`` survive); the
    page typesets those nodes with KaTeX."""
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.texmath import texmath_plugin
    from mdit_py_plugins.texmath.index import make_inline_func

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(["table", "strikethrough"])
    md.use(texmath_plugin, delimiters="brackets")
    md.use(dollarmath_plugin, allow_labels=False, allow_space=False, allow_digits=False, allow_blank_lines=False, double_inline=True)
    # \[...\] inside a paragraph (as chat models write it, on its own lines right after text)
    display_rule = {"name": "math_inline_double", "rex": re.compile(r"^\\\[(.+?)\\\]", re.DOTALL), "tmpl": "", "tag": "\\["}
    md.inline.ruler.before("escape", "math_inline_brackets_display", make_inline_func(display_rule))
    md.core.ruler.push("table_align_classes", _align_classes)
    for rule, display in (("math_inline", False), ("math_inline_double", True), ("math_block", True), ("math_block_eqno", True)):
        md.add_render_rule(rule, lambda self, tokens, idx, options, env, _d=display: _math(tokens, idx, options, env, _d))
    return md


_DOC_START = re.compile(r"^[ \t]{0,3}(<!doctype\s+html\b|<html\b)", re.IGNORECASE | re.MULTILINE)
_DOC_END = re.compile(r"</html\s*>", re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})", re.MULTILINE)


def fence_html_document(text: str) -> str:
    """An answer whose HTML is a whole document written as it is (not in a fenced block: a
    line starting with ``<!DOCTYPE html>`` or ``<html``) with that document put in a fenced
    ``html`` block, so it is shown as code with the same sandboxed preview as a fenced block
    (:mod:`openarena.serving.sandbox`, ``static/code.js``). The document runs from that line to
    the last ``</html>`` (or the end); prose before and after stays markdown. An answer that
    already has a fenced block, or no such line, is returned unchanged.

    The fence is one backtick longer than the longest run of backticks in the document, so
    the document cannot close it early."""
    if not text or _FENCE.search(text):
        return text
    m = _DOC_START.search(text)
    if m is None:
        return text
    start = m.start()
    ends = list(_DOC_END.finditer(text, start))
    end = ends[-1].end() if ends else len(text)
    doc = text[start:end].strip("\n")
    longest = max((len(r) for r in re.findall(r"`+", doc)), default=0)
    fence = "`" * max(3, longest + 1)
    before, after = text[:start], text[end:]
    return f"{before}{fence}html\n{doc}\n{fence}\n{after}"


def render_markdown(text: str) -> str:
    """An answer as safe HTML: markdown-it (raw HTML off) then nh3 with an allow-list.

    Returns: HTML containing only the tags of the allow-list; links only http, https, mailto
    (or relative), with rel="noopener noreferrer nofollow"; no event handlers, no script, no
    style elements, no images or iframes; classes only ``math``/``inline``/``block`` on span
    and div, ``align-*`` on table cells and ``language-*`` on code; no style attributes. Math is
    marked as described in :func:`_md`. Safe to assign to ``innerHTML``. A whole HTML document
    written without a fence is shown as a fenced ``html`` block (:func:`fence_html_document`).
    """
    html = _md().render(fence_html_document(text or ""))
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRS,
        allowed_classes=_ALLOWED_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# ---------------------------------------------------------------------------------------------
# Identity leaks


def identity_words(models: Iterable[Any]) -> list[str]:
    """Whole-word names that reveal a model of the registry: name, model_id, organisation (and
    the name's first dash-separated part when it is at least 4 letters, e.g. 'mistral')."""
    out: set[str] = set()
    for m in models:
        for v in (getattr(m, "name", None), getattr(m, "model_id", None), getattr(m, "organization", None)):
            if v and len(v) >= 3:
                out.add(v.lower())
        head = (getattr(m, "name", "") or "").split("-")[0]
        if len(head) >= 4 and head.isalpha():
            out.add(head.lower())
    return sorted(out)


@lru_cache(maxsize=16)
def _leak_rules(extra: tuple[str, ...]) -> list[tuple["re.Pattern[str]", list[tuple[str, "re.Pattern[str]"]]]]:
    """Compiled once per word list: (any-word pattern, [(word, its pattern)]) for FastChat's
    IDENTITY_WORDS as substrings, then the registry's words as whole words, exactly as
    :func:`openarena.data.curation.identity_leak` builds them."""
    from openarena.data.curation import IDENTITY_WORDS

    rules = []
    for words, whole in ((IDENTITY_WORDS, False), (extra, True)):
        words = [w.lower() for w in words if w]
        if not words:
            continue
        esc = [re.escape(w) for w in words]
        if whole:
            esc = [rf"(?<!\w){e}(?!\w)" for e in esc]
        rules.append((re.compile("|".join(esc)), [(w, re.compile(e)) for w, e in zip(words, esc)]))
    return rules


def identity_leak(conversation_a: Sequence[dict], conversation_b: Sequence[dict], extra_words: Sequence[str] = ()) -> str | None:
    """The word that reveals a model in this battle, or None.

    The data layer's curation rule (:func:`openarena.data.curation.identity_leak`, FastChat
    clean_battle_data.py) applied to one battle without building a table: every message of both
    sides (user and assistant), lower-cased and joined by newlines, searched for FastChat's
    IDENTITY_WORDS as substrings, then for ``extra_words`` (the registry's names, see
    :func:`identity_words`) as whole words. Patterns are compiled once per word list, so a vote
    pays microseconds. Same answers as the curation function (tests/serving/test_units.py).
    Returns: the first word found, in list order (for the vote's ``reason``), or None.
    """
    from openarena.text import message_text

    parts = []
    for conv in (conversation_a, conversation_b):
        for m in conv or ():
            if isinstance(m, dict):
                parts.append(message_text(m.get("content")))
    text = "\n".join(parts).lower()
    for any_word, singles in _leak_rules(tuple(extra_words)):
        if any_word.search(text):
            return next(w for w, r in singles if r.search(text))
    return None


# ---------------------------------------------------------------------------------------------
# Moderation


@dataclass
class Moderator:
    """Optional moderation of prompts through an OpenAI-compatible ``POST {base_url}/moderations``
    (body ``{"input": text}``, answer ``{"results": [{"flagged": bool, "categories": {...}}]}``).

    Attributes: base_url (…/v1), api_key_env (NAME of the variable with the key, or None),
    timeout_s, fail_open (when the endpoint fails: True lets the prompt through, False refuses).
    """

    base_url: str
    api_key_env: str | None = None
    timeout_s: float = 5.0
    fail_open: bool = True
    transport: Any = None  # an httpx transport, for tests

    async def flagged(self, text: str) -> tuple[bool, str]:
        """(flagged, categories or error, one line). Never raises for endpoint failures."""
        import httpx

        headers = {}
        if self.api_key_env:
            headers["authorization"] = f"Bearer {os.environ.get(self.api_key_env, '')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport) as client:
                r = await client.post(self.base_url.rstrip("/") + "/moderations", json={"input": text}, headers=headers)
                r.raise_for_status()
                res = r.json()["results"][0]
            cats = [k for k, v in (res.get("categories") or {}).items() if v]
            return bool(res.get("flagged")), ", ".join(cats)
        except Exception as e:  # noqa: BLE001 - any failure of the endpoint
            return (not self.fail_open), f"moderation endpoint failed: {type(e).__name__}"

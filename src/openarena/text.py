"""Text every layer shares: the text of a chat message's content (:func:`message_text`) and
valid Unicode text (:func:`clean_text`, :class:`StreamText`). A base module, like
:mod:`openarena.errors`: any layer may import it, it imports no layer.

Model text is made valid at the boundary: what comes out of a model endpoint is stored,
rendered, exported and sent to browsers, so it must be valid Unicode text.

JSON may carry lone surrogates (``"\\ud800"``): Python's json decodes them into a ``str`` that
cannot be encoded as UTF-8, so the page renderer, ``json.dumps(ensure_ascii=False)`` to a UTF-8
file, pyarrow and PostgreSQL all fail on it. A NUL character (``"\\u0000"``) is refused by
PostgreSQL text and JSON values. :func:`clean_text` replaces both with U+FFFD (the Unicode
replacement character, as a UTF-8 decoder does with ``errors="replace"``) and joins a surrogate
pair that arrived as two code points into the one character it encodes. :class:`StreamText`
does the same for a stream of deltas, where a pair may be split across two chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REPLACEMENT", "StreamText", "clean_text", "message_text"]

REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` as valid Unicode text: lone surrogates and NUL become U+FFFD, a surrogate pair
    written as two code points becomes its character. Valid text is returned as is (the same
    object). Cost: one ``str.encode`` check when nothing needs replacing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    return text


def _high_surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udbff"


class StreamText:
    """:func:`clean_text` for a stream of deltas: a high surrogate at the end of a delta is held
    back until the next delta (it may be the first half of a pair split across two chunks);
    :meth:`flush` gives what is still held (as U+FFFD) at the end of the stream."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, delta: str) -> str:
        """The clean text of ``delta`` (possibly empty, when only a held surrogate is pending)."""
        delta = self._held + delta
        self._held = ""
        if delta and _high_surrogate(delta[-1]):
            self._held, delta = delta[-1], delta[:-1]
        return clean_text(delta) if delta else ""

    def flush(self) -> str:
        """What is held back, cleaned (a lone high surrogate becomes U+FFFD); then nothing is held."""
        held, self._held = self._held, ""
        return clean_text(held) if held else ""


def message_text(content: Any, sep: str = "\n") -> str:
    """The text of one message's ``content``: a str as is; None as ''; a list of parts
    (OpenAI / arena-140k style ``[{'type': 'text', 'text': ...}, {'type': 'image', ...}]``)
    as its text parts joined with ``sep`` (newlines by default); a dict with 'answer' (arena-hard
    v2) or 'text'. The one reader of message text for every layer (stored battles, requests to
    the providers, the mock server, the route server, judges)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        for key in ("answer", "text", "content"):
            if isinstance(content.get(key), str):
                return content[key]
        return ""
    if isinstance(content, (list, tuple, np.ndarray)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("type", "text") == "text":
                parts.append(p["text"])
        return sep.join(parts)
    return str(content)

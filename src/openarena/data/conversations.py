"""Conversation values of battle rows, read leniently.

A ``conversation_a`` / ``conversation_b`` value comes as a list of ``{role, content}`` dicts
(JSON and JSONL files), as its JSON text (CSV), or as a numpy array of dicts (Parquet read by
pandas). The taggers, the curation steps and the public release accept all three and treat
anything else (missing, malformed, another type) as a conversation without messages: they
never fail on one odd row. :func:`openarena.data.style.add_style_columns` is strict instead and
names the bad row.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from openarena.text import message_text

__all__ = ["as_messages", "message_texts"]


def as_messages(value: Any) -> list[dict]:
    """The messages of a conversation value, as a list of dicts.

    Parameters: value, a list or tuple of messages, its JSON text, or a numpy array of them.
    Returns: the items that are dicts, in order; [] for text that does not parse as JSON and
    for a value that is not a list (None, NaN, a number, a dict ...).
    Source: the conversation columns of FastChat clean_battle files and the
    arena-human-preference datasets (lists of {role, content}).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:  # JSONDecodeError, or a number json cannot convert
            return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return []
    return [m for m in value if isinstance(m, dict)]


def message_texts(value: Any, role: str | None = None) -> list[str]:
    """The texts of a conversation's messages (of ``role`` only, when given), in order.

    Parameters: value, as :func:`as_messages`; role, e.g. 'user' or 'assistant' (None: all).
    Returns: list of str, each :func:`openarena.text.message_text` of a message's content.
    """
    return [message_text(m.get("content")) for m in as_messages(value) if role is None or m.get("role") == role]

"""The lenient conversation reader shared by the taggers, curation and the release."""

from __future__ import annotations

import json

import numpy as np
import pytest

from openarena.data.conversations import as_messages, message_texts

CONV = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
    {"role": "user", "content": "more"},
]


@pytest.mark.parametrize("value", [CONV, tuple(CONV), json.dumps(CONV), np.array(CONV, dtype=object)])
def test_every_form_gives_the_same_messages(value):
    assert as_messages(value) == CONV
    assert message_texts(value) == ["hi", "hello", "more"]
    assert message_texts(value, "user") == ["hi", "more"]
    assert message_texts(value, "assistant") == ["hello"]


@pytest.mark.parametrize("value", [None, float("nan"), 3, {"role": "user"}, "not json", '{"role": "user"}', "1" * 5000, ""])
def test_anything_else_is_an_empty_conversation(value):
    assert as_messages(value) == []
    assert message_texts(value) == []


def test_items_that_are_not_messages_are_skipped():
    assert as_messages([CONV[0], "stray", None, 5, CONV[2]]) == [CONV[0], CONV[2]]

"""Model text made valid: lone surrogates and NUL become U+FFFD, a surrogate pair written as two
code points (or split across two stream chunks) becomes its character."""

from __future__ import annotations

from openarena.text import REPLACEMENT, StreamText, clean_text


def test_clean_text_replaces_what_cannot_be_encoded():
    ok = "plain, ünïcode and 😀"
    assert clean_text(ok) is ok
    assert clean_text("a\ud800b") == f"a{REPLACEMENT}b"
    assert clean_text("a\udc00") == f"a{REPLACEMENT}"
    assert clean_text("nul\x00") == f"nul{REPLACEMENT}"
    assert clean_text("\ud83d\ude00") == "😀"  # a pair given as two code points (JSON "\ud83d\ude00" split)
    for s in ("x\ud800", "\udfff\ud800", "a\x00\ud83d"):
        clean_text(s).encode("utf-8")  # always encodable


def test_stream_text_joins_a_pair_split_across_chunks():
    st = StreamText()
    assert st.feed("a\ud83d") == "a"  # the high half is held back
    assert st.feed("\ude00b") == "😀b"
    assert st.feed("c\ud800") == "c"
    assert st.feed("d") == f"{REPLACEMENT}d"  # no low half came: replaced
    assert st.feed("e\udbff") == "e" and st.flush() == REPLACEMENT and st.flush() == ""

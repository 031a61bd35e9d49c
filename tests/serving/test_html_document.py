"""A whole HTML document written without a fence is shown (and previewed) as a fenced html block."""

from __future__ import annotations

from openarena.serving.safety import fence_html_document, render_markdown
from openarena.serving.sandbox import HTML_LANGS, fenced_blocks, python_blocks

DOC = "<!DOCTYPE html>\n<html>\n<body><h1>Hi</h1><script>document.title = '```';</script></body>\n</html>"


def test_a_bare_document_becomes_one_html_block():
    answer = "Here is the page you asked for:\n\n" + DOC + "\n\nOpen it in a browser."
    assert fenced_blocks(answer, HTML_LANGS) == [DOC + "\n"]
    html = render_markdown(answer)
    assert html.count('<code class="language-html">') == 1 and "<p>Open it in a browser.</p>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # shown as code, never as markup
    assert fence_html_document(DOC).startswith("````html\n")  # longer than the backticks inside


def test_a_document_starting_with_html_tag_and_no_end():
    answer = "<html lang='en'><body><p>unfinished"
    assert fenced_blocks(answer, HTML_LANGS) == [answer + "\n"]


def test_fenced_answers_and_plain_text_are_left_alone():
    fenced = "Try this:\n\n```html\n<p>a</p>\n```\n\nand\n\n```python\nprint(1)\n```\n"
    assert fence_html_document(fenced) == fenced
    assert fenced_blocks(fenced, HTML_LANGS) == ["<p>a</p>\n"] and python_blocks(fenced) == ["print(1)\n"]
    for text in ("Use the <html> element as the root.", "plain words", "", "x <!DOCTYPE html> inline"):
        assert fence_html_document(text) == text

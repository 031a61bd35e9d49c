"""The pages' static files: every script, stylesheet and icon a template names exists in the
package (so the wheel and a fresh clone need no npm), and each vendored library carries its
licence."""

from __future__ import annotations

import re
from pathlib import Path

import openarena.serving as serving

HERE = Path(serving.__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def test_every_static_file_a_template_names_exists():
    named = set()
    for tpl in TEMPLATES.glob("*.html"):
        named |= set(re.findall(r'(?:href|src)="/static/([^"?]+)"', tpl.read_text()))
    assert {"style.css", "arena.js", "vendor/katex/katex.min.js", "vendor/highlight.js/highlight.min.js"} <= named
    assert [n for n in sorted(named) if not (STATIC / n).is_file()] == []


def test_katex_fonts_are_all_there_in_woff2():
    css = (STATIC / "vendor/katex/katex.min.css").read_text()
    fonts = set(re.findall(r"url\(fonts/([^)]+\.woff2)\)", css))
    assert len(fonts) == 20 and all((STATIC / "vendor/katex/fonts" / f).is_file() for f in fonts)


def test_vendored_libraries_carry_their_licences():
    for lib, words in {"highlight.js": "BSD 3-Clause", "katex": "MIT License", "lucide": "ISC License"}.items():
        assert words in (STATIC / "vendor" / lib / "LICENSE").read_text()


def test_every_icon_used_is_defined():
    defined = set(re.findall(r"name == '([a-z-]+)'", (TEMPLATES / "_icons.html").read_text()))
    used = set()
    for tpl in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"icon\('([a-z-]+)'\)", tpl.read_text()))
    assert used and used <= defined
    # arena.js clones <template id="icon-NAME"> elements of arena.html
    in_js = set(re.findall(r'icon\("([a-z-]+)"\)', (STATIC / "arena.js").read_text()))
    in_js |= {"copy", "check"} if 'icon(copied ? "check" : "copy")' in (STATIC / "arena.js").read_text() else set()
    templates = set(re.findall(r'<template id="icon-([a-z-]+)">', (TEMPLATES / "arena.html").read_text()))
    assert {"alert", "copy", "check"} <= in_js <= templates

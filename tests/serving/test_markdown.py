"""Server-side rendering of answers (markdown-it + mdit-py-plugins math + nh3): the TeX of
math reaches the page intact, marked for KaTeX, and nothing else gets through the sanitiser."""

from __future__ import annotations

import html as htmllib
import re

import pytest

from openarena.serving.safety import render_markdown

MATH = re.compile(r'<(span|div) class="math (inline|block)">(.*?)</\1>', re.DOTALL)


def math_of(text: str) -> list[tuple[str, str]]:
    """[(inline|block, TeX source)] of the rendered answer, unescaped as the browser reads it."""
    return [(kind, htmllib.unescape(tex)) for _, kind, tex in MATH.findall(render_markdown(text))]


@pytest.mark.parametrize(
    "text, expected",
    [
        # markdown would eat these: \\ (escape), _ and * (emphasis), \{ (escape)
        ("inline $a_1 * b_2 \\{x\\}$ here", [("inline", "a_1 * b_2 \\{x\\}")]),
        ("$$\n\\begin{matrix} a \\\\ b \\end{matrix}\n$$", [("block", "\\begin{matrix} a \\\\ b \\end{matrix}")]),
        ("so $$x^2$$ inline", [("block", "x^2")]),
        ("brackets \\(x^2\\) and\n\\[\n\\int_0^1 f\n\\]\ndone", [("inline", "x^2"), ("block", "\\int_0^1 f")]),
        ("\\[\nE = mc^2\n\\]", [("block", "E = mc^2")]),
        ("$x < y$ and $a&b$", [("inline", "x < y"), ("inline", "a&b")]),
        # prices and shell variables are not math (Pandoc's rules)
        ("It costs $5 and $10.", []),
        ("Between $ 5 and $ 6", []),
        ("echo $HOME and $PATH", []),
        ("```\n$x$ in code\n```\n`$y$`", []),
    ],
)
def test_math_survives_markdown(text, expected):
    assert math_of(text) == expected


def test_math_is_escaped_text_not_html():
    html = render_markdown("$<img src=x onerror=alert(1)>$ and $</span><script>alert(2)</script>$")
    assert "<img" not in html and "<script" not in html
    assert [t for _, t in math_of("$<b>x</b>$")] == ["<b>x</b>"]  # shown to KaTeX as text


def test_only_the_page_classes_pass_the_sanitiser():
    # a model cannot forge the math marker or any other class or style in its output
    html = render_markdown('<span class="math inline">x</span> <div class="katex">y</div> <p style="color:red">z</p>')
    assert math_of('<span class="math inline">x</span>') == [] and "<span" not in html and "<div" not in html and "&lt;span" in html
    assert "style=" not in render_markdown("| a | b |\n|:-|-:|\n| 1 | 2 |")
    table = render_markdown("| a | b | c |\n|:-|:-:|-:|\n| 1 | 2 | 3 |")
    assert table.count('class="align-left"') == 2 and table.count('class="align-center"') == 2 and table.count('class="align-right"') == 2
    code = render_markdown("```python\nprint(1)\n```")
    assert '<code class="language-python">' in code


def test_render_processes_ignore_a_terminal_ctrl_c():
    """Ctrl-C in a terminal signals the whole process group, the render processes too: they
    leave the shutdown to the server (which stops the pool) instead of each printing a
    KeyboardInterrupt traceback, and keep rendering until then."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import asyncio, os, signal, time
        from openarena.serving import render
        render.configure(1)
        text = "**bold** " * 200  # past INLINE_CHARS: rendered in the pool
        first = asyncio.run(render.render_answer(text, 10_000))
        pid = next(iter(render._get_pool()._processes))
        os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        again = asyncio.run(render.render_answer(text, 10_000))
        print(first == again and "<strong>bold</strong>" in again, pid in render._get_pool()._processes)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"] and "KeyboardInterrupt" not in r.stderr, r.stderr


def test_render_processes_end_with_the_server():
    """A server that shuts down stops its render processes; one killed outright (SIGKILL) takes
    them with it instead of leaving them blocked on their queue for ever."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    script = textwrap.dedent("""
        import asyncio, sys, time
        from openarena.serving import render
        render.configure(1)
        asyncio.run(render.render_answer("**bold** " * 200, 10_000))
        print(*render._get_pool()._processes, flush=True)
        if sys.argv[1] == "shutdown":
            render.shutdown()
        else:
            time.sleep(60)
    """)

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    for how in ("shutdown", "kill"):
        p = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE, text=True)
        pids = [int(x) for x in p.stdout.readline().split()]
        assert pids and all(alive(pid) for pid in pids)
        if how == "kill":
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids), how
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

"""The page people use, in Debian's headless Chromium (Playwright), with the real
Content-Security-Policy in force (no ``bypass_csp``: the vendored highlight.js, KaTeX and its
fonts must work under script-src/style-src/font-src 'self', and any CSP violation fails a test).

Covers: highlighted code blocks with a copy button that copies, TeX math typeset by KaTeX,
markdown tables, dark mode following the system setting, no sideways scrolling at 390 px on every
page, icons as inline SVG (no emoji), the HTML 404 page (JSON for the API), side-by-side panels
that name the chosen models, direct-chat errors that talk about the chat. Screenshots at desktop
(1280 px) and phone (390 px) widths go to out/screenshots/page_*.png.
"""

from __future__ import annotations

import re

import httpx
import pytest

from openarena.demo.mock_server import Behaviour
from openarena.serving.routes.pages import NAV
from tests.serving.conftest import GOOD, MODELS, SCREENSHOTS
from tests.serving.helpers import new_battle, open_session, play
from tests.serving.test_browser import browser  # noqa: F401  (one Chromium for this module)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

CODE = 'def add(a, b):\n    """Sum."""\n    return a + b  # a very long comment that is much wider than a phone screen, so the block must scroll inside itself'
RICH = (
    "Here is the code:\n\n"
    f"```python\n{CODE}\n```\n\n"
    "| model | arena score | 95% CI | votes | win rate | organisation | licence | notes |\n"
    "|:------|------:|:-----:|------:|------:|:------|:------|:------|\n"
    "| alpha | 1203 | +5/-4 | 12,345 | 61% | Acme Research | Apache 2.0 | a long cell to make the table wide |\n"
    "| beta  | 1187 | +6/-6 | 11,002 | 55% | Globex | MIT | another long cell |\n\n"
    "Euler: $e^{i\\pi} + 1 = 0$, and a sum with a subscript $a_1 * b_2$. It costs $5 and $10.\n\n"
    "$$\n\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix} \\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\n$$\n\n"
    "Also written as\n\\[\n\\int_0^1 x^2\\,dx = \\tfrac{1}{3}\n\\]\nin brackets."
)
RICH_MODELS = {
    "zephyrine-alpha-7b": Behaviour.fixed(RICH, chunk_chars=400, chunk_delay_s=0.002),
    "orcanova-beta-13b": Behaviour.echo("Echo: ", chunk_delay_s=0.002),
}
EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
PAGES = ["/", "/side-by-side", "/direct", "/leaderboard", "/trust", "/about", "/no-such-page"]


@pytest.fixture
def open_page(browser):  # noqa: F811
    """open_page(viewport=DESKTOP, dark=False) -> a Page with the CSP in force; console errors
    (CSP violations among them) and page errors are collected in page.problems."""
    contexts = []

    def make(viewport=DESKTOP, dark=False, clipboard_origin=None):
        ctx = browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")
        if clipboard_origin:
            ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=clipboard_origin)
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        problems: list[str] = []
        # console errors (CSP violations among them); failed loads are reported by URL below
        pg.on("console", lambda m: problems.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and "/no-such-page" not in r.url and "/no/such" not in r.url else None)
        pg.problems = problems
        return pg

    try:
        yield make
    finally:
        for ctx in contexts:
            ctx.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"page_{name}.png"), full_page=True)


def send(page, text: str, n_answers: int) -> None:
    """Type, send, wait for ``n_answers`` final answers and the end of the turn (selectors only:
    no script is evaluated in the page's world, which the CSP would refuse)."""
    page.fill("#prompt", text)
    page.click("#send")
    page.wait_for_selector(f".msg.assistant.done >> nth={n_answers - 1}")
    page.wait_for_selector("#stop:disabled")


def no_sideways_scroll(page) -> tuple[int, int]:
    return page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")


def luminance(css_rgb: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.fixture
def rich(arena_factory):
    return arena_factory(RICH_MODELS)


def _answer_with_code(page):
    """The panel whose answer holds the rich markdown (the pair's order is random)."""
    return page.locator(".msg.assistant.done", has=page.locator(".codeblock")).first


def test_code_math_and_tables_render(rich, open_page):
    page = open_page(clipboard_origin=rich.url)
    page.goto(rich.url + "/")
    send(page, "show me code and math", 2)
    answer = _answer_with_code(page)
    # highlight.js ran on the final answer: keyword, string and comment spans in the code block
    code = answer.locator(".codeblock pre code.hljs")
    assert code.count() == 1 and code.get_attribute("data-highlighted") == "yes"
    assert code.locator(".hljs-keyword").all_text_contents()[:2] == ["def", "return"]
    assert code.locator(".hljs-comment").count() == 1 and code.locator(".hljs-string").count() == 1
    assert answer.locator(".codeblock-head").text_content().startswith("python")
    # the copy button puts exactly the code's text on the clipboard
    button = answer.locator(".codeblock button.copy")
    assert button.locator("svg.icon").count() == 1
    button.click()
    page.wait_for_selector(".codeblock button.copy.copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == CODE + "\n"
    assert "Copied" in button.text_content()
    # KaTeX typeset the math: 2 inline, 2 display; the TeX source survived markdown intact
    assert answer.locator(".katex").count() == 4
    assert answer.locator(".katex-display").count() == 2
    tex = answer.locator("annotation[encoding='application/x-tex']").all_text_contents()
    assert "e^{i\\pi} + 1 = 0" in tex and "a_1 * b_2" in tex
    assert any("\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}" in t for t in tex)
    assert any("\\int_0^1" in t for t in tex)
    assert answer.locator(".katex-error").count() == 0
    assert "It costs $5 and $10." in answer.text_content()  # prices are not math
    # KaTeX's fonts load from this origin (font-src 'self')
    loaded = page.evaluate("() => document.fonts.ready.then(() => [...document.fonts].filter(f => f.family.replace(/\"/g, '').startsWith('KaTeX') && f.status === 'loaded').length)")
    assert loaded >= 2
    # the table: header, two rows, alignment from the markdown, its own horizontal scroll box
    table = answer.locator("table")
    assert table.locator("th").count() == 8 and table.locator("tbody tr").count() == 2
    assert table.locator("td.align-right").first.evaluate("td => getComputedStyle(td).textAlign") == "right"
    assert table.evaluate("t => getComputedStyle(t).overflowX") == "auto"
    shot(page, "rich_desktop")
    assert page.problems == []


def test_dark_mode_follows_the_system(rich, open_page):
    colours = {}
    for dark in (False, True):
        page = open_page(dark=dark)
        page.goto(rich.url + "/")
        send(page, "show me code and math", 2)
        answer = _answer_with_code(page)
        colours[dark] = {
            "body": page.evaluate("() => getComputedStyle(document.body).backgroundColor"),
            "text": page.evaluate("() => getComputedStyle(document.body).color"),
            "panel": page.locator("#panel-a").evaluate("p => getComputedStyle(p).backgroundColor"),
            "keyword": answer.locator(".hljs-keyword").first.evaluate("k => getComputedStyle(k).color"),
            "katex": answer.locator(".katex").first.evaluate("k => getComputedStyle(k).color"),
        }
        shot(page, "rich_dark_desktop" if dark else "rich_light_desktop")
        assert page.problems == []
    light, dark = colours[False], colours[True]
    assert luminance(light["body"]) > 0.95 and luminance(light["text"]) < 0.2
    assert luminance(dark["body"]) < 0.1 and luminance(dark["text"]) > 0.8
    assert luminance(dark["panel"]) < 0.1
    assert light["keyword"] != dark["keyword"]  # the dark highlight.js theme is the one applied
    assert luminance(dark["katex"]) > 0.8  # math inherits the light text colour


def test_no_sideways_scrolling_at_390px_on_every_page(rich, open_page):
    with rich.client() as c:
        h = open_session(c)
        for i in range(4):
            play(c, h, f"q{i}", winner=["model_a", "model_b", "tie", "model_a"][i])
    rich.state.leaderboard.refresh()
    assert rich.state.leaderboard.snapshot.n_votes == 4  # the board has rows to lay out
    for dark in (False, True):
        page = open_page(viewport=PHONE, dark=dark)
        for path in PAGES:
            page.goto(rich.url + path)
            width, inner = no_sideways_scroll(page)
            assert width <= inner, f"{path}: {width} px wide at {inner} px"
            if not dark:
                shot(page, "phone" + (path.strip("/").replace("-", "_") or "arena"))
        # a long rich answer: code, wide table and display math scroll inside their own boxes
        page.goto(rich.url + "/")
        send(page, "show me code and math " + "x" * 300, 2)
        page.wait_for_selector("#votes:not([hidden])")
        width, inner = no_sideways_scroll(page)
        assert width <= inner, f"arena with answers: {width} px wide at {inner} px"
        assert page.locator(".codeblock pre code").evaluate("c => c.scrollWidth > c.clientWidth")  # scrolls itself
        shot(page, "phone_rich_dark" if dark else "phone_rich")
        assert page.problems == []


def test_icons_are_inline_svg_not_emoji(arena, open_page):
    page = open_page()
    for path in PAGES:
        page.goto(arena.url + path)
        text = page.evaluate("() => document.body.innerText")
        assert not EMOJI.search(text), f"{path}: emoji {EMOJI.findall(text)}"
        shot(page, "desktop" + (path.strip("/").replace("-", "_") or "arena"))
    page.goto(arena.url + "/")
    send(page, "hello", 2)
    page.wait_for_selector("#votes:not([hidden])")
    assert not EMOJI.search(page.evaluate("() => document.body.innerText"))
    for sel in ("#votes button", ".prompt .buttons button"):
        buttons = page.locator(sel)
        assert buttons.count() == 4
        for i in range(4):
            svg = buttons.nth(i).locator("svg.icon")
            assert svg.count() == 1 and svg.get_attribute("aria-hidden") == "true"
            box = svg.bounding_box()
            assert box and 12 <= box["width"] <= 24  # drawn at text size, not missing
    assert [b.strip() for b in page.locator("#votes button").all_text_contents()] == ["A is better", "B is better", "Tie", "Both are bad"]
    assert page.problems == []


def test_html_404_page_and_json_api_errors(arena, open_page):
    for viewport, name in ((DESKTOP, "404_desktop"), (PHONE, "404_phone")):
        page = open_page(viewport=viewport)
        resp = page.goto(arena.url + "/no/such/page")
        assert resp.status == 404 and resp.headers["content-type"].startswith("text/html")
        assert page.text_content("h1") == "Page not found"
        assert page.locator("nav.main a").count() == len(NAV) == 8 and page.locator("a[href='/']").count() >= 2
        assert "content-security-policy" in resp.headers
        shot(page, name)
        assert page.problems == []
    with httpx.Client(base_url=arena.url) as c:
        for path in ("/api/no-such-endpoint", "/no-such-board.json"):
            r = c.get(path, headers={"accept": "text/html,application/xhtml+xml"})
            assert r.status_code == 404 and r.headers["content-type"] == "application/json" and "detail" in r.json()
        r = c.get("/no/such/page", headers={"accept": "application/json"})
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        r = c.get("/static/no-such-file.js", headers={"accept": "text/html"})
        assert r.status_code == 404 and "<html" not in r.text
        r = c.get("/api/battles", headers={"accept": "text/html"})  # a POST-only API path
        assert r.status_code == 405 and r.headers["content-type"] == "application/json"


def test_side_by_side_panels_name_the_chosen_models(arena, open_page):
    a, b = list(MODELS)
    page = open_page()
    page.goto(arena.url + "/side-by-side")
    assert page.text_content("#label-a") == f"Model A: {a}" and page.text_content("#label-b") == f"Model B: {b}"
    page.select_option("#model-a", b)
    page.select_option("#model-b", a)
    assert page.text_content("#label-a") == f"Model A: {b}" and page.text_content("#label-b") == f"Model B: {a}"
    send(page, "What is the capital of France?", 2)
    assert "Paris" in page.text_content("#chat-b") and "Echo: What is the capital" in page.text_content("#chat-a")
    assert page.text_content("#label-a") == f"Model A: {b}"
    shot(page, "side_by_side_desktop")
    page.click("#votes button[data-winner='model_b']")
    page.wait_for_selector("#reveal:not([hidden])")
    assert page.text_content("#label-a") == f"Model A: {b}" and page.text_content("#label-b") == f"Model B: {a}"
    page.click("#new-round")
    assert page.text_content("#label-a") == f"Model A: {b}"  # still the chosen models
    page.goto(arena.url + "/direct")
    assert page.text_content("#label-a") == a
    page.select_option("#model-a", b)
    assert page.text_content("#label-a") == b
    page.set_viewport_size(PHONE)
    page.goto(arena.url + "/side-by-side")
    send(page, "hello there", 2)
    shot(page, "side_by_side_phone")
    assert page.problems == []


def test_direct_chat_error_talks_about_the_chat(arena_factory, open_page):
    live = arena_factory(GOOD, extra={"mock-broken": Behaviour.failing(503)})
    page = open_page()
    page.goto(live.url + "/direct")
    page.select_option("#model-a", "mock-broken")
    page.fill("#prompt", "hello?")
    page.click("#send")
    page.wait_for_selector(".msg.error[role=alert]")
    page.wait_for_selector("#status.error")
    error, status = page.text_content(".msg.error"), page.text_content("#status")
    for message in (error, status):
        assert "vote" not in message.lower() and "battle" not in message.lower() and "round" not in message.lower()
        assert "new chat" in message
    shown = page.inner_text("body")  # what the visitor reads (the HTML also holds random hex tokens and ids)
    assert "could not answer" in error and "503" not in shown and str(live.mock.port) not in shown
    assert page.locator(".msg.error svg.icon").count() == 1
    assert page.is_disabled("#send") and page.text_content("#new-round").strip() == "New chat"
    shot(page, "direct_error_desktop")
    page.click("#new-round")
    assert page.locator(".msg").count() == 0 and page.is_enabled("#send")
    assert page.problems == []


UNTRUSTED_TEX = (
    "Links: $\\href{javascript:alert('href')}{click}$ and $\\url{javascript:alert('url')}$, "
    "HTML: $\\htmlClass{x}{y}$ $\\htmlData{foo=bar}{z}$, image: $\\includegraphics{/static/favicon.svg}$.\n\n"
    "$$\\def\\loop{\\loop}\\loop$$\n\n"
    "Fine: $x^2$"
)


def test_math_from_models_is_untrusted(arena_factory, open_page):
    live = arena_factory({"zephyrine-alpha-7b": Behaviour.fixed(UNTRUSTED_TEX), "orcanova-beta-13b": Behaviour.fixed(UNTRUSTED_TEX)})
    page = open_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live.url + "/")
    send(page, "math please", 2)
    chats = page.locator(".chat")
    for link in page.locator(".chat .katex a").all():
        link.click(no_wait_after=True)
    assert dialogs == []
    assert page.locator(".chat .katex a, .chat img, .chat [data-foo], .chat .x").count() == 0
    # untrusted commands are typeset as their names (KaTeX's unsupported-command colour), the
    # endless macro is refused and stays as its source, marked as an error
    assert page.locator(".chat .katex").count() == 2 * 6
    assert all(cmd in chats.first.text_content() for cmd in ("\\href", "\\url", "\\htmlClass", "\\includegraphics"))
    assert page.locator(".chat .katex-error").count() == 2
    assert "\\def\\loop" in page.locator(".chat .katex-error").first.text_content()
    colour = page.locator(".chat .katex-error").first.evaluate("e => getComputedStyle(e).color")
    assert colour == "rgb(180, 35, 24)"  # --err in the light theme
    assert page.problems == []


def test_direct_chat_refusals_talk_about_the_chat(arena_factory):
    live = arena_factory(GOOD, max_turns=1)
    with live.client() as c:
        h = open_session(c, "/direct")
        bid = c.post("/api/battles", json={"mode": "direct", "model_a": list(MODELS)[0]}, headers=h).json()["battle_id"]
        assert c.post(f"/api/battles/{bid}/turns", json={"prompt": "hi"}, headers=h).status_code == 200
        r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "again"}, headers=h)
        assert r.status_code == 409 and r.json()["error"] == "This chat reached its 1 turns: start a new chat."
        bid = new_battle(c, h)  # an anonymous battle keeps the battle wording
        c.post(f"/api/battles/{bid}/turns", json={"prompt": "hi"}, headers=h)
        r = c.post(f"/api/battles/{bid}/turns", json={"prompt": "again"}, headers=h)
        assert r.status_code == 409 and "vote" in r.json()["error"]

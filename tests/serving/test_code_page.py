"""The code arena on the battle page, in Debian's Chromium with the real CSP: a Run button under
each Python block of the answers; the output (stdout, exit status, the matplotlib figure) shows
under the block. HTML blocks render live in a sandboxed iframe whose script tries, and fails, to
read the arena's cookies and DOM, navigate the top window, open a popup and reach the network (a
loopback canary server counts any request). Screenshots at desktop and phone widths go to
out/screenshots/code_*.png."""

from __future__ import annotations

import pytest

from openarena.demo.mock_server import Behaviour
from openarena.serving.sandbox import CodeLimits, CodeRunner, probe
from tests.serving.conftest import MODELS, SCREENSHOTS
from tests.serving.test_browser import browser  # noqa: F401  (one Chromium for this module)
from tests.serving.test_page import DESKTOP, PHONE, no_sideways_scroll, open_page, send  # noqa: F401

pytestmark = pytest.mark.skipif(probe() is not None, reason="bubblewrap cannot run here")

PROMPT = (
    "Plot it:\n\n```python\nimport matplotlib.pyplot as plt\nprint('six times seven is', 6 * 7)\n"
    "plt.plot([1, 4, 2, 3])\nplt.title('from the sandbox')\nplt.show()\n```\n\n"
    "and fail:\n\n```py\nraise SystemExit('bad input')\n```"
)


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_run_button_shows_output_and_figure(arena_factory, open_page, viewport, name):  # noqa: F811
    live = arena_factory({n: Behaviour.echo("Here: ", chunk_delay_s=0.001) for n in MODELS})
    live.server.config.app.state.code_runner = CodeRunner(CodeLimits(wall_s=60, cpu_s=40))
    page = open_page(viewport=viewport)
    page.goto(live.url + "/")
    send(page, PROMPT, 2)
    runs = page.locator("#chat-a button.run")
    assert runs.count() == 2 and page.locator("#chat-b button.run").count() == 2
    runs.nth(0).click()
    out = page.locator("#chat-a .run-output").nth(0)
    out.locator(".run-status.ok").wait_for(timeout=90_000)
    assert out.locator(".run-stdout").inner_text().strip() == "six times seven is 42"
    assert "The program finished." in out.locator(".run-status").inner_text()
    img = out.locator("img.run-image")
    assert img.count() == 1 and img.evaluate("i => i.naturalWidth") == 640
    runs.nth(1).click()
    bad = page.locator("#chat-a .run-output").nth(1)
    bad.locator(".run-status.error").wait_for(timeout=30_000)
    assert bad.locator(".run-stderr").inner_text().strip() == "bad input"
    assert "exited with status 1" in bad.locator(".run-status").inner_text()
    if name == "phone":
        width, inner = no_sideways_scroll(page)
        assert width <= inner
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out.scroll_into_view_if_needed()  # the panel scrolls inside itself: show the output
    page.screenshot(path=str(SCREENSHOTS / f"code_run_{name}.png"), full_page=True)
    assert page.problems == []


class Canary:
    """A loopback HTTP server counting every request: the artifact must never reach it."""

    def __init__(self) -> None:
        import http.server
        import threading

        hits = self.hits = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.send_header("access-control-allow-origin", "*")
                self.end_headers()
                self.wfile.write(b"reached")

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


ATTACK_HTML = """<!doctype html><html><body><h1 id="t">Artifact</h1><div id="r">pending</div><script>
const out = {};
try { out.cookie = "read:" + document.cookie; } catch (e) { out.cookie = "blocked:" + e.name; }
try { out.parent_dom = "read:" + window.parent.document.body.innerHTML.length; } catch (e) { out.parent_dom = "blocked:" + e.name; }
try { out.top_dom = "read:" + window.top.document.cookie; } catch (e) { out.top_dom = "blocked:" + e.name; }
try { out.storage = "read:" + window.localStorage.length; } catch (e) { out.storage = "blocked:" + e.name; }
try { window.top.location.href = "http://127.0.0.1:CANARY/navigated"; out.top_nav = "no exception"; } catch (e) { out.top_nav = "blocked:" + e.name; }
try { window.open("http://127.0.0.1:CANARY/popup"); } catch (e) {}
new Image().src = "http://127.0.0.1:CANARY/img";
const tries = [fetch("http://127.0.0.1:CANARY/fetch"), fetch("ARENA/healthz")];
Promise.allSettled(tries).then((r) => {
  out.fetch = r.map((x) => x.status).join(",");
  try { new WebSocket("ws://127.0.0.1:CANARY/ws"); out.ws = "opened"; } catch (e) { out.ws = "blocked:" + e.name; }
  document.getElementById("r").textContent = JSON.stringify(out);
});
</script></body></html>"""


def test_html_artifact_is_sandboxed(arena_factory, open_page):  # noqa: F811
    import json

    import httpx

    canary = Canary()
    try:
        live = arena_factory({n: Behaviour.echo("Here: ", chunk_delay_s=0.001) for n in MODELS})
        page = open_page(viewport=DESKTOP)
        page.context.add_cookies([{"name": "probe", "value": "arena-secret", "url": live.url}])
        page.goto(live.url + "/")
        assert "probe=arena-secret" in page.evaluate("() => document.cookie")  # the arena itself can read it
        html = ATTACK_HTML.replace("CANARY", str(canary.port)).replace("ARENA", live.url)
        send(page, "A page:\n\n```html\n" + html + "\n```", 2)
        page.locator("#chat-a button.preview").click()
        frame = page.frame_locator("#chat-a iframe.artifact")
        assert frame.locator("#t").inner_text() == "Artifact"  # the page renders, its script runs
        result = frame.locator("#r")
        result.filter(has_not_text="pending").wait_for(timeout=15_000)
        got = json.loads(result.inner_text())
        page.wait_for_timeout(1000)  # give a navigation or a late request the time to happen
        assert got["cookie"] == "blocked:SecurityError"  # opaque origin: no cookies
        assert got["parent_dom"] == "blocked:SecurityError" and got["top_dom"] == "blocked:SecurityError"
        assert got["storage"] == "blocked:SecurityError"
        assert got["fetch"] == "rejected,rejected"  # connect-src 'none': neither the network nor the arena
        assert page.url.rstrip("/") == live.url and canary.hits == []  # no navigation, popup, image, fetch
        assert got["top_nav"] in ("no exception", "blocked:SecurityError")  # either way, nothing happened
        # toggling back shows the code
        page.locator("#chat-a button.preview").click()
        assert page.locator("#chat-a iframe.artifact").is_hidden() and page.locator("#chat-a .codeblock pre").first.is_visible()
        page.locator("#chat-a button.preview").click()
        page.locator("#chat-a").screenshot(path=str(SCREENSHOTS / "code_artifact_desktop.png"))
        # the artifact URL itself: sandboxed by its own CSP even when opened directly; other sessions get 404
        src = page.locator("#chat-a iframe.artifact").get_attribute("src")
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        r = httpx.get(live.url + src, cookies=cookies)
        assert r.status_code == 200 and r.headers["content-security-policy"].startswith("sandbox allow-scripts; default-src 'none'")
        assert "frame-ancestors 'none'" not in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "SAMEORIGIN"
        assert httpx.get(live.url + src).status_code == 404
    finally:
        canary.close()

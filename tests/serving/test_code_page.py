"""The code arena on the battle page, in Debian's Chromium with the real CSP: a Run button under
each Python block of the answers; the output (stdout, exit status, the matplotlib figure) shows
under the block. Screenshots at desktop and phone widths go to out/screenshots/code_*.png."""

from __future__ import annotations

import pytest

from openarena.providers.mock_server import Behaviour
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

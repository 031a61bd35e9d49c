"""``openarena models check`` and ``openarena serve`` argument errors."""

from __future__ import annotations

from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.demo import DEMO_REGISTRY

runner = CliRunner()


def test_models_check_pings_every_demo_model():
    res = runner.invoke(app, ["models", "check", str(DEMO_REGISTRY), "--demo", "--timeout", "10"])
    # demo-flaky fails its first call by design: the check retries once, as the arena's client
    # does, says so, and the demo checks clean
    assert res.exit_code == 0, res.output
    for name in ("demo-echo", "demo-poet", "demo-markdown", "demo-judge", "demo-flaky"):
        assert name in res.output
    from openarena.providers.registry import load_registry

    n = len(load_registry(DEMO_REGISTRY))  # every demo model answers, the flaky one on its retry
    assert n >= 6 and res.output.count("yes") == n and res.output.count("yes (on retry)") == 1 and "500" in res.output


def test_serve_reports_bad_input_on_one_line(tmp_path):
    res = runner.invoke(app, ["serve", "--port", "0", "--registry", str(tmp_path / "missing.yaml"), "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "file not found" in res.output
    res = runner.invoke(app, ["serve", "--port", "0", "--registry", str(DEMO_REGISTRY), "--policy", "nope", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "unknown sampling policy" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "x.json"), "--db", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert res.exit_code == 2


def test_serve_on_port_0_prints_the_port_it_listens_on(tmp_path):
    """``serve --port 0`` (any free port) prints the real address, not ``localhost:0``."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    import httpx

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "openarena", "serve", "--demo", "--port", "0", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, text=True, start_new_session=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "running at" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve ended before printing its address"
        url = re.search(r"http://\S+", line).group(0)
        assert not url.endswith(":0")
        while True:
            try:
                assert httpx.get(url + "/healthz", timeout=5).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"nothing listens at {url}"
                time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

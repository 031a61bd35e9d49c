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

"""Bad input to ``openarena serve``, ``export``, ``leaderboard db`` and ``models check`` is one
``error:`` line and exit status 2, never a traceback, and is found before anything starts (no
mock server, no database, no folder created)."""

from __future__ import annotations

import json
import os
import socket

import pytest
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.demo import DEMO_REGISTRY

runner = CliRunner()
DEMO = str(DEMO_REGISTRY)


def one_error(res, *words: str) -> str:
    """The result is exit 2 with one ``error:`` line holding every word, and no traceback."""
    out = res.output
    assert res.exit_code == 2, (res.exit_code, out, res.exception)
    assert "Traceback" not in out and not isinstance(res.exception, (KeyError, UnicodeError, AttributeError))
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    for w in words:
        assert w in lines[0], (w, out)
    return lines[0]


@pytest.fixture
def no_demo(monkeypatch):
    """Fail the test if the demo mock server is started."""
    started = []

    def start(*a, **kw):
        started.append(1)
        raise AssertionError("the mock server must not start on bad input")

    monkeypatch.setattr("openarena.demo.start_demo_models", start)
    return started


# -- export / leaderboard db: readers -----------------------------------------------------------


def test_export_from_a_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "notes.bin"
    junk.write_bytes(os.urandom(4096))
    res = runner.invoke(app, ["export", str(tmp_path / "e.json"), "--db", f"sqlite:///{junk}"])
    one_error(res, str(junk), "not a SQLite database")
    assert not (tmp_path / "e.json").exists()


def test_readers_never_create_a_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENARENA_DATABASE_URL", raising=False)
    monkeypatch.delenv("OPENARENA_DATA_DIR", raising=False)
    target = tmp_path / "new" / "dir" / "x.db"
    res = runner.invoke(app, ["export", "e.json", "--db", f"sqlite:///{target}"])
    one_error(res, str(target), "no such database file")
    res = runner.invoke(app, ["export", "e.json", "--data-dir", str(tmp_path / "data")])
    one_error(res, "openarena.db", "no such database file")
    res = runner.invoke(app, ["leaderboard", "db"])  # default: ./arena-data/openarena.db
    one_error(res, "arena-data", "no such database file")
    res = runner.invoke(app, ["leaderboard", f"sqlite:///{target}"])
    one_error(res, "no such database file")
    res = runner.invoke(app, ["export", "e.json", "--db", f"sqlite:///{tmp_path}"])
    one_error(res, "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no database, no output


# -- serve -----------------------------------------------------------------------------------


def serve(tmp_path, *args: str):
    """``openarena serve`` with ``args``; ``--port 0`` (any free port; a later --port wins), so
    the port check passes whatever listens on 8000 (e.g. ``make run``) and each test reaches
    the check it is about."""
    return runner.invoke(app, ["serve", "--port", "0", "--data-dir", str(tmp_path / "data"), *args])


def test_serve_unknown_log_level(tmp_path, no_demo):
    one_error(serve(tmp_path, "--registry", DEMO, "--demo", "--log-level", "bogus"), "--log-level", "bogus", "warning", "debug")
    assert not no_demo and not (tmp_path / "data").exists()


def test_serve_outage_must_name_a_registry_model(tmp_path, no_demo):
    line = one_error(serve(tmp_path, "--registry", DEMO, "--demo", "--outage", "demo-echo", "--outage", "nope"), "--outage", "'nope'")
    assert "demo-echo" in line and "demo-poet" in line  # the registry's names
    assert not no_demo and not (tmp_path / "data").exists()


def test_serve_port_in_use_before_anything_starts(tmp_path, no_demo):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        res = serve(tmp_path, "--registry", DEMO, "--demo", "--port", str(port))
        one_error(res, str(port), "already in use")
    finally:
        busy.close()
    assert not no_demo and not (tmp_path / "data").exists()


@pytest.mark.parametrize("content, words", [
    (b"\x89PNG\r\n\x1a\n\x00\xff", ["not a UTF-8 text file"]),
    (b"{not json", ["invalid JSON"]),
    (b"[1, 2]", ["'leaderboard'"]),
    (json.dumps({"leaderboard": []}).encode(), ["no rows"]),
    (json.dumps({"leaderboard": [{"model": "m", "rating": "high", "num_battles": 3}]}).encode(), ["row 1", "'rating'"]),
    (json.dumps({"leaderboard": [{"model": "m", "rating": 1000.0, "num_battles": 3}], "provenance": [1]}).encode(), ["provenance"]),
])
def test_serve_refuses_a_bad_reference(tmp_path, no_demo, content, words):
    ref = tmp_path / "leaderboard.json"
    ref.write_bytes(content)
    one_error(serve(tmp_path, "--registry", DEMO, "--demo", "--reference", str(ref)), str(ref), *words)
    one_error(serve(tmp_path, "--registry", DEMO, "--reference", str(tmp_path / "missing.json")), "file not found")
    assert not no_demo and not (tmp_path / "data").exists()


def test_serve_needs_a_registry_or_demo(tmp_path, no_demo):
    one_error(serve(tmp_path), "--registry", "--demo")
    assert not no_demo and not (tmp_path / "data").exists()


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_serve_bad_data_dir(tmp_path, kind):
    if kind == "file":
        target = tmp_path / "a-file"
        target.write_text("x")
        words = [str(target), "is a file, not a folder"]
    else:
        target = tmp_path / "a-file" / "below"  # cannot be created whoever runs the test
        (tmp_path / "a-file").write_text("x")
        words = [str(target), "cannot create"]
    res = runner.invoke(app, ["serve", "--port", "0", "--registry", DEMO, "--data-dir", str(target)])
    one_error(res, *words)


def test_serve_data_dir_under_proc(tmp_path):
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    one_error(runner.invoke(app, ["serve", "--port", "0", "--registry", DEMO, "--data-dir", "/proc/forbidden"]), "/proc/forbidden")


def test_serve_database_that_is_not_a_database(tmp_path, no_demo):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    one_error(serve(tmp_path, "--registry", DEMO, "--demo", "--db", f"sqlite:///{junk}"), str(junk), "not a SQLite database")
    assert not no_demo  # the database is opened before the mock server starts


# -- models check ------------------------------------------------------------------------------


def test_models_check_binary_and_empty_registries(tmp_path):
    binary = tmp_path / "binary.bin"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    one_error(runner.invoke(app, ["models", "check", str(binary)]), str(binary), "not a UTF-8 text file")
    empty = tmp_path / "empty.yaml"
    empty.write_text("models: []\n")
    one_error(runner.invoke(app, ["models", "check", str(empty)]), str(empty), "at least one model")
    bare = tmp_path / "bare.yaml"
    bare.write_text("[]\n")
    one_error(runner.invoke(app, ["models", "check", str(bare)]), "at least one model")

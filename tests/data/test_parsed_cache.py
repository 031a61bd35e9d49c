"""A large pair-counts JSON is parsed once: the next read comes from the cache while the file's
modification time and size are unchanged, and gives the same PairCounts."""

from __future__ import annotations

import json
import os

import numpy as np

from openarena.data.readers import pair_counts as pcm
from openarena.data.readers import read_battles


def _write(path, n_models: int, scale: int = 1) -> None:
    models = [f"model-{k:03d}" for k in range(n_models)]
    pairs = [[i, j] for i in range(n_models) for j in range(i + 1, n_models)]
    counts = [[scale * (3 + (i * 7 + j) % 5), scale * (1 + (i + j) % 4), i % 2, j % 3] for i, j in pairs]
    path.write_text(json.dumps({"models": models, "X": pairs, "Y": counts}))


def test_second_read_comes_from_the_cache_and_a_changed_file_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENARENA_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "counts.json"
    _write(f, 80)
    assert f.stat().st_size >= pcm.PARSED_CACHE_MIN_BYTES
    first = read_battles(f)
    assert pcm._cache_file(f).exists()
    parses = []
    real = pcm._parse_file
    monkeypatch.setattr(pcm, "_parse_file", lambda *a: parses.append(a) or real(*a))
    again = read_battles(f)
    assert parses == []
    assert again.models == first.models and again.source == first.source == str(f)
    assert np.array_equal(again.pairs, first.pairs) and np.array_equal(again.counts, first.counts)
    _write(f, 80, scale=2)  # new counts (and size)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = read_battles(f)
    assert len(parses) == 1
    assert np.array_equal(changed.counts[:, :2], 2 * first.counts[:, :2]) and np.array_equal(changed.counts[:, 2:], first.counts[:, 2:])


def test_a_small_file_is_not_cached_and_an_unwritable_cache_is_harmless(tmp_path, monkeypatch):
    small = tmp_path / "small.json"
    _write(small, 5)
    monkeypatch.setenv("OPENARENA_CACHE", str(tmp_path / "c1"))
    read_battles(small)
    assert not (tmp_path / "c1").exists()
    big = tmp_path / "big.json"
    _write(big, 80)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("OPENARENA_CACHE", str(blocker))
    pc = read_battles(big)
    assert pc.n_models == 80

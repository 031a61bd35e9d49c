"""A snapshot manifest is a file a stranger may hand over: `verify` checks it before reading or
fitting anything (hostile review: unbounded rounds, wrong types, unknown formats)."""

from __future__ import annotations

import json

import pytest

from openarena.analysis.trust.snapshot import validate_manifest
from openarena.errors import DataError

GOOD = {"format": 1, "source": "votes.csv", "read_options": {"anony": False, "dedup": False, "since": None, "until": None, "exclude": [], "min_battles": 0, "aliases": {}},
        "fit_options": {"ci": "sandwich", "rounds": 100, "seed": 0, "anchor": None, "ties": "half"}}


def _with(path: str, value):
    doc = json.loads(json.dumps(GOOD))
    head, _, key = path.rpartition(".")
    (doc[head] if head else doc)[key] = value
    return doc


def test_a_good_manifest_passes():
    validate_manifest(GOOD, "m.json")


@pytest.mark.parametrize("path, value, field", [
    ("format", 99, "format"),
    ("fit_options.rounds", 10**9, "fit_options.rounds"),
    ("fit_options.ties", 5, "fit_options.ties"),
    ("fit_options.ci", "magic", "fit_options.ci"),
    ("read_options.aliases", [1], "read_options.aliases"),
    ("read_options.min_battles", -1, "read_options.min_battles"),
    ("source", None, "source"),
])
def test_bad_manifests_are_named(path, value, field):
    with pytest.raises(DataError, match=f"field '{field}'"):
        validate_manifest(_with(path, value), "m.json")
    with pytest.raises(DataError):
        validate_manifest({**GOOD, "fit_options": None}, "m.json")

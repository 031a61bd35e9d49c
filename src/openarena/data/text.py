"""Valid Unicode text for every layer that reads stored data (storage, export, release): the
cleaning that model answers get at the provider boundary (:mod:`openarena.providers.text`),
here for the layers that may not import providers directly."""

from __future__ import annotations

from openarena.providers.text import REPLACEMENT, clean_text

__all__ = ["REPLACEMENT", "clean_text"]

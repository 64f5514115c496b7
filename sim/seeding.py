"""Independent, reproducible random streams derived from one seed.

Each machine gets its own streams (process, sensor noise, faults), so a fault on one machine or a
different run length never shifts the random numbers another machine sees.
"""

from __future__ import annotations

import random

import numpy as np

PROCESS = 0
NOISE = 1
FAULT = 2
RANDOM_FAULT = 3
RELEASE = 4
"""A line's order release (families, arrivals): drawn per line, with station index 0."""


def _sequence(seed: int, keys: tuple[int, ...]) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed % 2**64, spawn_key=keys)


def stream(seed: int, *keys: int) -> random.Random:
    """A ``random.Random`` for the stream named by ``keys`` (e.g. line, station, purpose)."""
    words = _sequence(seed, keys).generate_state(2).tolist()
    return random.Random(words[0] << 32 | words[1])  # noqa: S311 - simulation, not cryptography


def generator(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(_sequence(seed, keys))


class NoisePool:
    """Standard normal draws, produced in bulk: drawing one at a time is the telemetry hot path's
    biggest cost otherwise."""

    __slots__ = ("_generator", "_size", "index", "values")

    def __init__(self, rng: np.random.Generator, size: int = 8192) -> None:
        self._generator = rng
        self._size = size
        self.values: list[float] = []
        self.index = 0

    def refill(self) -> None:
        self.values = self._generator.standard_normal(self._size).tolist()
        self.index = 0

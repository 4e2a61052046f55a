"""Seeded random generators, one per purpose and named by it (``seed/room/events``), so that
adding draws for one purpose never shifts another's sequence and a run is repeatable from
its seed. The simulation's randomness is for realism, not security.
"""

from __future__ import annotations

import random


def seeded(seed: int, *names: str) -> random.Random:
    """The generator for ``names`` under ``seed`` (stable across runs and platforms)."""
    return random.Random("/".join((str(seed), *names)))  # noqa: S311 - not cryptography

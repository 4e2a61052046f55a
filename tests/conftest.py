"""Shared fixtures: real services (see :mod:`tests.services`) and the shipped device profiles;
the property tests' settings.

Site configs are built with the plain functions of :mod:`tests.sites` (no fixture): they are
needed at import time (module constants, helpers, parametrize lists) and by the benchmarks,
where fixtures cannot reach."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from coldchain.profiles.registry import ProfileRegistry
from tests.postgres import hub_engine, postgres, postgres_cluster, state
from tests.services import mosquitto, restartable_mosquitto, secured_mosquitto
from tests.sites import shipped_profiles
from tests.victoria import victoria_metrics

__all__ = [
    "hub_engine",
    "mosquitto",
    "postgres",
    "postgres_cluster",
    "profiles",
    "restartable_mosquitto",
    "secured_mosquitto",
    "state",
    "victoria_metrics",
]

# Property tests judge correctness, not speed: no per-example deadline (the 2 shared cores
# of a CI run make timings meaningless). In CI the examples are derived from each test's
# name, so a run is repeatable and a submission cannot fail on an example no earlier run
# tried; a developer's run explores new ones (and keeps failures in .hypothesis/).
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def profiles() -> ProfileRegistry:
    """The shipped device profiles, loaded once per session (the registry is immutable)."""
    return shipped_profiles()

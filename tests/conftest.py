"""Shared fixtures: real services (see :mod:`tests.services`); the property tests' settings."""

import os

from hypothesis import settings

from tests.services import mosquitto, restartable_mosquitto
from tests.victoria import victoria_metrics

__all__ = ["mosquitto", "restartable_mosquitto", "victoria_metrics"]

# Property tests judge correctness, not speed: no per-example deadline (the 2 shared cores
# of a CI run make timings meaningless). In CI the examples are derived from each test's
# name, so a run is repeatable and a submission cannot fail on an example no earlier run
# tried; a developer's run explores new ones (and keeps failures in .hypothesis/).
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

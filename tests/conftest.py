"""Shared fixtures: real services (see :mod:`tests.services`)."""

from tests.services import mosquitto, restartable_mosquitto
from tests.victoria import victoria_metrics

__all__ = ["mosquitto", "restartable_mosquitto", "victoria_metrics"]

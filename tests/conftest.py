"""Shared fixtures: real services (see :mod:`tests.services`)."""

from tests.services import mosquitto, restartable_mosquitto

__all__ = ["mosquitto", "restartable_mosquitto"]

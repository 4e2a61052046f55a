"""Shared fixtures: real services (see :mod:`tests.services`)."""

from tests.services import mosquitto

__all__ = ["mosquitto"]

"""The states of an alert, as one enum shared by the evaluator, the hub's lifecycle, the
store and the pages.

An alert is ``pending`` while its condition holds but its delay has not run out, ``firing``
once it has, ``acknowledged`` when someone has taken it on (it stays open until the condition
clears), and ends ``resolved`` (the condition cleared after firing) or ``cancelled`` (it
cleared, or was suppressed, before firing). The evaluator emits changes to pending, firing,
resolved and cancelled; acknowledged is a person's doing.

A :class:`~enum.StrEnum`: a state is its lowercase name wherever it is stored or sent (the
``alerts.state`` column, JSON, audit records), and compares equal to that string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class AlertState(StrEnum):
    """Where an alert is in its life."""

    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


OPEN_STATES: Final = frozenset({AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED})
"""An alert in one of these is open: at most one open alert per watch key."""

"""What the alert lifecycle refuses, as domain errors: each says what is wrong in words and
carries no transport detail. The HTTP API maps them (``alerts/api.py``): not found 404,
conflict 409, invalid 422, unavailable 503."""

from __future__ import annotations


class AlertError(Exception):
    """A request the alerts cannot honour."""


class NotFoundError(AlertError):
    """The alert, room or rule named does not exist (or has nothing to act on)."""


class ConflictError(AlertError):
    """The request does not fit the thing's current state (already acknowledged, not firing)."""


class InvalidError(AlertError):
    """The request itself is wrong (a time in the past, a missing reason)."""


class UnavailableError(AlertError):
    """No hub runs the alerts now: a request made on one that does not was not taken up."""

"""People's actions taken on a hub that does not run the alerts (a web worker, a standby),
applied by the one that does.

The alert lifecycle runs in one process, the leader (``hub/leader.py``). An acknowledgement,
a snooze, a maintenance window or a rule edit made on another hub's web UI or API, and a
Twilio delivery report or SMS reply that reaches it, is written to the hub's state as a
request (``alert_requests``). The leader takes the queued ones every :data:`POLL_S` and
applies each exactly as it would its own, in one transaction with the request's mark (done
with its result, or refused with the reason): a leader killed half-way leaves the request
queued for the next one, and none is applied twice.

The hub that asked waits up to :data:`WAIT_S` for the answer and gives the person the
leader's result or refusal; past that it withdraws the request (unless the leader took it
meanwhile) and refuses with :class:`~alerts.errors.UnavailableError` (no hub runs the alerts:
nothing was changed). Delivery reports and SMS replies are not waited for: Twilio wants its
answer at once, and the leader applies them when it takes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alerts.errors import (
    AlertError,
    ConflictError,
    InvalidError,
    NotFoundError,
    UnavailableError,
)
from alerts.store import AlertStore

if TYPE_CHECKING:
    from alerts.service import AlertService

log = logging.getLogger(__name__)

POLL_S = 0.2
"""How often the leader looks for requests (a person's action: this is their wait)."""
WAIT_S = 10.0
"""How long the hub that asked waits for the leader's answer."""
ERRORS: dict[str, type[AlertError]] = {
    e.__name__: e for e in (AlertError, ConflictError, InvalidError, NotFoundError)
}


def _apply(svc: AlertService, action: str, a: dict[str, Any]) -> dict[str, Any]:
    """Apply one request on the leader's service; what to answer."""
    if action == "ack":
        row = svc.ack(a["alert_id"], by=a["by"], comment=a["comment"], via=a["via"])
        return {"alert": row.id}
    if action == "snooze":
        return {"alert": svc.snooze(a["alert_id"], until_ms=a["until_ms"], by=a["by"]).id}
    if action == "reply":
        replied = svc.reply(a["phone"], a["text"], via=a["via"])
        return {"alert": replied.id if replied is not None else None}
    if action == "delivery":
        svc.delivery(a["ref"], a["status"])
        return {}
    if action == "maintenance":
        svc.maintenance(
            a["site"], a["room"], until_ms=a["until_ms"], reason=a["reason"], by=a["by"]
        )
        return {}
    if action == "put_rule":
        return {"rule": svc.put_rule(a["body"], by=a["by"]).id}
    if action == "revert_rule":
        svc.revert_rule(a["rule_id"], by=a["by"])
        return {}
    raise InvalidError(f"unknown request {action!r}")  # a newer hub's, or a forged row


def serve(svc: AlertService) -> int:
    """On the leader: apply the queued requests, oldest first; how many were taken."""
    store, taken = svc.store, 0
    for rid, action, args in store.queued_requests():
        try:
            with store.transaction():
                if not store.claim_request(rid):
                    continue  # withdrawn meanwhile
                result = _apply(svc, action, args)
                store.finish_request(rid, "done", result, now_ms=svc.clock())
        except AlertError as exc:  # rolled back: refused, nothing changed
            _finish(svc, rid, "refused", {"error": type(exc).__name__, "message": str(exc)})
        except Exception as exc:  # a request the leader cannot read: failed, not retried
            log.exception("alert request %d (%s) failed", rid, action)
            _finish(svc, rid, "failed", {"error": "AlertError", "message": f"failed: {exc}"})
        taken += 1
    return taken


def _finish(svc: AlertService, rid: int, status: str, answer: dict[str, Any]) -> None:
    with svc.store.transaction():
        if svc.store.claim_request(rid):
            svc.store.finish_request(rid, status, answer, now_ms=svc.clock())


class Forwarder:
    """On a hub that does not lead: hand a person's action to the leader and wait for its
    answer (see the module docstring)."""

    def __init__(
        self, store: AlertStore, clock: Callable[[], int], *, wait_s: float = WAIT_S
    ) -> None:
        self.store, self.clock, self.wait_s = store, clock, wait_s

    def call(self, action: str, *, wait: bool = True, **args: Any) -> dict[str, Any]:
        """The leader's answer to ``action`` (``{}`` at once when not ``wait``); raises its
        refusal as the :mod:`alerts.errors` it raised, or :class:`UnavailableError`."""
        rid = self.store.add_request(action, args, now_ms=self.clock())
        if not wait:
            return {}
        deadline, delay = time.monotonic() + self.wait_s, 0.01
        while True:
            got = self.store.request(rid)
            status, result = got if got is not None else ("failed", None)
            if status == "done":
                return result or {}
            if status in ("refused", "failed"):
                error = result or {}
                raise ERRORS.get(str(error.get("error")), AlertError)(
                    str(error.get("message", "refused by the alert leader"))
                )
            if time.monotonic() >= deadline and self.store.withdraw_request(
                rid, now_ms=self.clock()
            ):
                raise UnavailableError(
                    f"no hub runs the alerts now (none answered within {self.wait_s:.0f} s): "
                    "nothing was changed; try again, and check the alert leader "
                    "(coldchain hub --role alerts)"
                )
            time.sleep(delay)  # the API's worker thread, not the event loop
            delay = min(delay * 2, 0.1)

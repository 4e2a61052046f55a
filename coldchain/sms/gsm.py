"""The GSM modem as a notifier: the hub's dispatcher and an agent's offline fallback both
send an :class:`~coldchain.sms.types.Sms` through it and get a
:class:`~coldchain.sms.types.Delivery` back.

It has the shape of :class:`alerts.notifiers.base.Notifier` (``id``, ``texts_phones``,
``send``, ``aclose``) without importing :mod:`alerts`, which an agent does not install: the
protocol is structural.

Delivery reports arrive per part, each naming the part's message reference (TP-MR, what
``+CMGS`` answered); they are mapped back to the message's ``Sms.ref`` and passed on as
``on_delivery(ref, "delivered" | "failed")``: failed as soon as one part failed, delivered
when every part was. A report that the centre is still trying is not passed on.

Which failures are worth trying again (here later, or at the next provider): all but those
that say the recipient or the message itself is wrong. A timeout, a lost port, a locked
SIM, no network, congestion, even +CMS ERROR 21 "short message transfer rejected" (what many
operators answer for a SIM without credit or barred from SMS) are retryable, as another
provider may well deliver. Not retryable: a number or text that cannot be encoded, and the
network saying the number does not exist (+CMS ERROR 1, 28, 30) or the message is malformed
(+CMS ERROR 96), which no provider can fix.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from coldchain.config.notify import GsmModem
from coldchain.secrets import resolve
from coldchain.sms.modem import Modem, ModemCommandError, ModemError, OnIncoming
from coldchain.sms.pdu import PduError, ReportStatus
from coldchain.sms.types import Delivery, DeliveryStatus, SendError, Sms

log = logging.getLogger(__name__)

OnDelivery = Callable[[str, DeliveryStatus], Awaitable[None] | None]

PERMANENT_CMS = frozenset({1, 28, 30, 96})
"""+CMS ERROR codes about the recipient or the message: no other provider will do better."""


def retryable(exc: ModemError) -> bool:
    """Whether a send that failed with ``exc`` may succeed later or elsewhere."""
    if isinstance(exc, ModemCommandError) and exc.kind == "CMS" and exc.code is not None:
        return exc.code not in PERMANENT_CMS
    return True


@dataclass
class _Tracked:
    """A sent message waiting for the reports of its parts."""

    ref: str
    waiting: set[int] = field(default_factory=set)


class GsmNotifier:
    """Texts through a GSM modem (:class:`~coldchain.sms.modem.Modem`) on a serial port.

    The port is opened at the first send (or by :meth:`open`, to hear replies at once) and
    reopened after it fails. ``on_incoming(sender, text)`` receives messages people send to
    the modem's number.
    """

    def __init__(
        self,
        settings: GsmModem,
        *,
        on_delivery: OnDelivery | None = None,
        on_incoming: OnIncoming | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.id: str = settings.id
        self.texts_phones: bool = True
        self.settings = settings
        self.on_delivery = on_delivery
        pin = resolve(settings.pin, base_dir=base_dir).get_secret_value() if settings.pin else None
        self.modem = Modem(
            settings.port,
            baud=settings.baud,
            pin=pin,
            smsc=settings.smsc,
            timeout=settings.timeout,
            on_status=self._report,
            on_incoming=on_incoming,
        )
        self._by_mr: dict[int, _Tracked] = {}  # at most 256: TP-MR is one octet

    async def open(self) -> None:
        """Open the modem now rather than at the first send; raises :class:`SendError`."""
        try:
            await self.modem.open()
        except ModemError as exc:
            raise SendError(self.id, str(exc), retryable=True) from exc

    async def send(self, sms: Sms) -> Delivery:
        """Send ``sms.text`` to ``sms.to``; "accepted" with the parts' references."""
        if not sms.to:
            raise SendError(self.id, f"message {sms.ref} has no phone number", retryable=False)
        try:
            refs = await self.modem.send(
                sms.to, sms.text, status_report=self.settings.delivery_reports
            )
        except PduError as exc:
            raise SendError(self.id, f"message {sms.ref}: {exc}", retryable=False) from exc
        except ModemError as exc:
            raise SendError(self.id, f"message {sms.ref}: {exc}", retryable=retryable(exc)) from exc
        if self.settings.delivery_reports:
            tracked = _Tracked(sms.ref, set(refs))
            for mr in refs:  # a reused reference now names this message
                self._by_mr[mr] = tracked
        return Delivery(self.id, "accepted", provider_ref=",".join(map(str, refs)), parts=len(refs))

    async def aclose(self) -> None:
        """Close the modem's port."""
        await self.modem.close()

    async def _report(self, mr: int, status: ReportStatus) -> None:
        tracked = self._by_mr.get(mr)
        if tracked is None:
            log.debug("%s: report for unknown message reference %d", self.id, mr)
            return
        if status == "pending":
            return
        del self._by_mr[mr]
        if status == "failed":
            for other in tracked.waiting:
                if self._by_mr.get(other) is tracked:
                    del self._by_mr[other]
            tracked.waiting.clear()
            await self._deliver(tracked.ref, "failed")
            return
        tracked.waiting.discard(mr)
        if not tracked.waiting:
            await self._deliver(tracked.ref, "delivered")

    async def _deliver(self, ref: str, status: DeliveryStatus) -> None:
        log.info("%s: message %s %s", self.id, ref, status)
        if self.on_delivery is None:
            return
        result = self.on_delivery(ref, status)
        if inspect.isawaitable(result):
            await result

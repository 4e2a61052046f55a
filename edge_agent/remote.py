"""Commissioning commands from the centre (:mod:`coldchain.protocol.commands`), run by the
agent on its own buses: a scan or a read, answered on ``cmd/reply``.

The agent's poller owns each bus. A command takes the bus from it for as long as it runs
(:meth:`~edge_agent.poller.BusPoller.exclusive`: the poll in progress finishes, the next
waits), so two masters never talk on one RS-485 line; polling resumes when it is done, and
no reading taken is lost (the devices are simply not polled meanwhile). One command at a
time per gateway; a scan may probe at most :data:`MAX_PROBES` addresses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from coldchain.config.site import RtuBus, TcpBus
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.commands import Reply, Request
from edge_agent.commission import modbus_profile, read_report, scan_report
from edge_agent.modbus_io import ReadError
from edge_agent.poller import BusPoller
from edge_agent.scan import (
    LineSetting,
    default_timeout,
    parse_bauds,
    parse_choices,
    parse_units,
    rtu_link,
    scan_rtu,
    scan_tcp,
    tcp_link,
)

log = logging.getLogger(__name__)
MAX_PROBES = 3 * 247  # three bauds of a whole line: under a minute at 9600 with the fast pass


class CommandError(Exception):
    """A command that cannot run: the reply's error text."""


async def run_command(
    req: Request, pollers: Sequence[BusPoller], profiles: ProfileRegistry
) -> Reply:
    """Run ``req`` on the bus it names; its reply (an error reply, never an exception)."""
    try:
        poller = next((p for p in pollers if p.bus.id == req.bus), None)
        if poller is None:
            known = ", ".join(p.bus.id for p in pollers) or "none"
            raise CommandError(f"no Modbus bus {req.bus!r} on this gateway (buses: {known})")
        async with poller.exclusive():
            if req.action == "scan":
                result = await _scan(req, poller.bus, profiles)
            else:
                result = await _read(req, poller, profiles)
    except CommandError as exc:
        return Reply(req.id, ok=False, error=str(exc))
    except ReadError as exc:
        return Reply(req.id, ok=False, error=exc.message)
    except Exception as exc:  # a command must never take the agent down
        log.exception("command %s %s failed", req.action, req.id)
        return Reply(req.id, ok=False, error=f"internal error: {exc}")
    return Reply(req.id, ok=True, result=result)


async def _scan(req: Request, bus: RtuBus | TcpBus, profiles: ProfileRegistry) -> dict[str, Any]:
    try:
        units = parse_units(req.units or "1-247")
        if isinstance(bus, RtuBus):
            bauds = parse_bauds(req.baud) if req.baud else [bus.baud]
            parities = parse_choices(req.parity, "NEO", "parity") if req.parity else [bus.parity]
        else:
            bauds, parities = [], []
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    settings = [LineSetting(b, p) for b in bauds for p in parities]
    probes = len(units) * max(len(settings), 1)
    if probes > MAX_PROBES:
        raise CommandError(
            f"{probes} probes asked; at most {MAX_PROBES} at once "
            "(the bus is not polled while a scan runs)"
        )
    if isinstance(bus, TcpBus):
        result = await scan_tcp(bus.host, bus.port, units, wait=bus.timeout)
        return await scan_report(
            result, profiles, lambda _f: tcp_link(bus.host, bus.port, bus.timeout)
        )
    result = await scan_rtu(bus.port, settings, units)
    return await scan_report(
        result,
        profiles,
        lambda f: rtu_link(
            bus.port, f.setting or settings[0], max(default_timeout(bus.baud, bus.parity), 0.3)
        ),
    )


async def _read(req: Request, poller: BusPoller, profiles: ProfileRegistry) -> dict[str, Any]:
    assert req.unit is not None  # checked by decode_request
    assert req.profile is not None
    try:
        profile = modbus_profile(profiles, req.profile)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return await read_report(poller.link, req.unit, profile)  # the poller's own link

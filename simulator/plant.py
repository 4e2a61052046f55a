"""The plant: every room of the site config with its thermal model (and the sorting line in a
sorting hall), and every device of every gateway attached to its room through its profile.

:meth:`Plant.advance` moves the physics to a simulated time, applies the active faults,
refreshes the devices' values (temperatures and humidities at the sensors' own pace, in
simulated time; discrete points every call) and records every served Modbus value that changed
in the :class:`~simulator.journal.Journal`. MQTT values are journaled when published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coldchain.config.limits import RoomClass
from coldchain.config.site import Room, Site, SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ModbusProfile
from simulator.device import SimDevice
from simulator.faults import DeviceInfo, FaultKind, FaultSet, Targets
from simulator.journal import Journal
from simulator.room_params import params_for
from simulator.seeding import seeded
from simulator.signals import RoomView
from simulator.sorting import LineParams, SortingLine
from simulator.thermal import RoomModel


@dataclass(eq=False)
class SimRoom:
    """A room of a site, alive."""

    key: str  # site/room
    config: Room
    model: RoomModel
    line: SortingLine | None

    def advance_to(self, t: float) -> None:
        self.model.advance_to(t)
        if self.line is not None:
            self.line.power_cut = self.model.power_cut
            self.line.advance_to(t)

    def state(self) -> dict[str, object]:
        m = self.model
        out: dict[str, object] = {
            "class": str(self.config.room_class),
            "air": round(m.air, 3),
            "rh": round(m.rh, 2),
            "coil": round(m.coil, 2),
            "surroundings": round(m.surroundings, 2),
            "setpoint": m.setpoint,
            "differential": m.differential,
            "compressor_relay": m.relay,
            "compressor_running": m.compressor_running,
            "defrost": str(m.defrost),
            "door_open": m.door_open,
            "door_alarm": m.door_alarm,
            "power_cut": m.power_cut,
            "compressor_failed": m.compressor_failed,
            "door_stuck_open": m.door_stuck_open,
        }
        if self.line is not None:
            out["line"] = {
                "running": self.line.running,
                "jammed": self.line.jammed,
                "parcels": self.line.parcels,
                "jams": self.line.jams,
            }
        return out


def utc_offset(site: Site, at: float) -> float:
    """Seconds east of UTC of the site's time zone at ``at``."""
    try:
        zone = ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"site {site.id}: unknown time zone {site.timezone!r}") from exc
    offset = datetime.fromtimestamp(at, UTC).astimezone(zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


class Plant:
    """Rooms and devices of a site config, advanced together."""

    def __init__(
        self,
        config: SiteConfig,
        profiles: ProfileRegistry,
        *,
        seed: int,
        start: float,
        journal: Journal | None = None,
        serve_gaps: bool = False,
        sensor_period: float = 1.0,
    ) -> None:
        self.config = config
        self.journal = journal if journal is not None else Journal()
        self.sensor_period = sensor_period
        self.t = start
        self._last_analog: float | None = None
        self.rooms: dict[str, SimRoom] = {}
        for site in config.sites:
            offset = utc_offset(site, start)
            for room in site.rooms:
                key = f"{site.id}/{room.id}"
                params = params_for(room, seeded(seed, key, "params"), utc_offset=offset)
                model = RoomModel(params, rng=seeded(seed, key, "events"), start=start)
                line = None
                if room.room_class is RoomClass.SORTING:
                    line = SortingLine(LineParams(), rng=seeded(seed, key, "line"), start=start)
                self.rooms[key] = SimRoom(key, room, model, line)
        self.devices: dict[str, SimDevice] = {}
        for gw in config.gateways:
            buses = {b.id: b for b in gw.buses}
            for d in gw.devices:
                room_ = self.rooms[f"{gw.site}/{d.room}"]
                self.devices[f"{gw.id}/{d.id}"] = SimDevice(
                    site=gw.site,
                    gateway=gw.id,
                    config=d,
                    profile=profiles.get(d.profile),
                    bus=buses[d.bus],
                    view=RoomView(room_.model, room_.line),
                    rng=seeded(seed, gw.id, d.id),
                    serve_gaps=serve_gaps,
                )

    def targets(self) -> Targets:
        """What faults can be put on."""
        return Targets(
            devices={
                k: DeviceInfo(
                    d.profile.protocol, d.bus.type, frozenset(p.name for p in d.profile.points)
                )
                for k, d in self.devices.items()
            },
            rooms={k: r.line is not None for k, r in self.rooms.items()},
            gateways={g.id for g in self.config.gateways},
        )

    def apply_faults(self, faults: FaultSet) -> None:
        """Set the physics and probe faults from the active fault set."""
        for key, room in self.rooms.items():
            room.model.power_cut = faults.has(FaultKind.POWER_CUT, key)
            room.model.compressor_failed = faults.has(FaultKind.COMPRESSOR_FAILURE, key)
            room.model.fans_failed = faults.has(FaultKind.FAN_FAILURE, key)
            room.model.door_stuck_open = faults.has(FaultKind.DOOR_STUCK_OPEN, key)
            if room.line is not None:
                line = room.line
                line.forced_jam = faults.has(FaultKind.JAM, key)
                line.e_stop = faults.has(FaultKind.E_STOP, key)
                fault = faults.get(FaultKind.LINE_FAULT, key)
                line.fault_code = 0 if fault is None else fault.code or 1
                line.chutes_full = faults.has(FaultKind.CHUTE_FULL, key)
                line.fault_stop = faults.has(FaultKind.LINE_STOP, key)
        for key, dev in self.devices.items():
            fault = faults.get(FaultKind.PROBE_OPEN, key)
            dev.probe_open = set() if fault is None else {fault.point or "*"}
            dev.view.probe_fault = fault is not None

    def advance_rooms(self, t: float) -> None:
        """Advance the physics (rooms, sorting line) to simulated time ``t``, without
        refreshing the devices (an in-process run refreshes a device when it is read)."""
        if t > self.t:
            for room in self.rooms.values():
                room.advance_to(t)
            self.t = t

    def advance(self, t: float, *, wall: float, refresh_all: bool = False) -> None:
        """Advance the rooms to simulated time ``t`` and refresh what the devices serve
        (temperatures and humidities every ``sensor_period`` simulated seconds, a
        transmitter's measurement cycle, or ``refresh_all``); ``wall`` stamps the journal."""
        self.advance_rooms(t)
        analog = (
            refresh_all
            or self._last_analog is None
            or (self.t - self._last_analog >= self.sensor_period)
        )
        if analog:
            self._last_analog = self.t
        sim_ms, wall_ms = int(self.t * 1000), int(wall * 1000)
        for dev in self.devices.values():
            changed = dev.refresh(analog=analog)
            if not isinstance(dev.profile, ModbusProfile):
                continue
            for name in changed:
                self.journal.record(
                    dev.series(name),
                    sim_ms=sim_ms,
                    wall_ms=wall_ms,
                    value=dev.values[name],
                    reason=dev.reasons[name],
                )

    def state(self) -> dict[str, object]:
        return {
            "sim_time": self.t,
            "rooms": {k: r.state() for k, r in self.rooms.items()},
            "devices": {
                k: {
                    "profile": d.profile.id,
                    "bus": d.bus.id,
                    "room": d.config.room,
                    "unit_id": d.unit_id,
                    "values": dict(d.values),
                    "reasons": {n: r for n, r in d.reasons.items() if r},
                }
                for k, d in self.devices.items()
            },
        }

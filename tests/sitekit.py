"""A whole site in one process on ONE clock the test steps: the simulator's plant and
devices, each gateway's agent acquisition (its real :class:`~edge_agent.poller.BusPoller`
and :class:`~edge_agent.mqtt_input.MqttInput`, and the agent's report-on-change filter), the
hub's :class:`~gateway.ingest.Ingest` checks (the wire protocol and its timestamp bounds,
against the same clock) and its :class:`~alerts.service.AlertService` with the site's real
notifiers (the example site's file outbox), all in simulated time.

A simulated week of the example site runs in well under a minute of wall time, which no
run over real Modbus can: what stands in for the wire is the only thing not real.

* Modbus: :class:`ImageLink` answers the poller's requests with the simulator's own request
  handler (:func:`simulator.pdu.handle`) on the device's register image, and turns the
  simulator's wire faults into what the agent's link reports on a real wire (silent, bad CRC:
  no reply; garbage: a garbled reply; exception: the code; link down: no reply). A line in
  process has no inter-frame gap.
* MQTT: the simulator's :class:`~simulator.mqtt.MqttSensors` publish through
  :class:`Handoff` straight into the agent's ``MqttInput.handle``.
* Uplink: each step's admitted readings go as one protocol batch per gateway through
  ``Ingest.check`` (rejections fail the run) into ``AlertService.on_readings``.

The pollers run their own loops (staggering, intervals, backoff) on the :class:`ManualClock`;
:meth:`SiteRun.step` moves the physics, then the clock, lets every woken poller finish its
turn, publishes what MQTT sensors have due, ships the batches, ticks the alerts and sends
what is due.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.notifiers.factory import build_all
from alerts.service import AlertService
from alerts.store import AlertRow
from coldchain.clock import ManualClock
from coldchain.config.site import MqttBus, RtuBus, SiteConfig, TcpBus
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import PointKind, Table
from coldchain.protocol.messages import Batch, encode_batch
from coldchain.reading import Reading, SeriesId
from coldchain.store.sqlite.store import SqliteStore
from edge_agent.agent import modbus_states_of, mqtt_devices_of
from edge_agent.modbus_io import ReadError, Request
from edge_agent.mqtt_input import MqttInput
from edge_agent.poller import BusPoller
from edge_agent.report import ReportFilter
from gateway.ingest import Ingest, RejectedError
from hub.audit import AuditLog
from simulator.device import SimDevice
from simulator.faults import FaultKind, FaultSet
from simulator.journal import Journal
from simulator.mqtt import MqttSensors
from simulator.pdu import handle
from simulator.plant import Plant

MQTT_MEASURE_S = 30.0  # a battery sensor measures this often (it reports less often)
_FC = {Table.COIL: 1, Table.DISCRETE: 2, Table.HOLDING: 3, Table.INPUT: 4}


class ImageLink:
    """The agent's Modbus link to one simulated bus, in process (see the module doc)."""

    def __init__(
        self, bus: RtuBus | TcpBus, gateway: str, devices: Sequence[SimDevice], faults: FaultSet
    ) -> None:
        self.bus, self.gateway, self.devices, self.faults = bus, gateway, list(devices), faults
        self.refreshed: dict[str, float] = {}
        self.now = 0.0

    async def read(self, req: Request) -> list[int] | list[bool]:
        where = f"bus {self.bus.id} unit {req.unit} {req.table} {req.start}+{req.count}"
        dev = next((d for d in self.devices if d.unit_id == req.unit), None)
        if dev is None:
            raise ReadError("timeout", where, "No response received (no such unit)")
        fault = self.faults.wire_fault(dev.key, self.gateway)
        kind = fault.kind if fault is not None else None
        if kind in (FaultKind.SILENT, FaultKind.BAD_CRC):
            raise ReadError("timeout", where, "No response received")
        if kind is FaultKind.EXCEPTION and fault is not None:
            code = fault.code or 4
            raise ReadError("exception", where, f"exception {code}", code)
        if kind is FaultKind.GARBAGE:
            raise ReadError("garbage", where, "garbled reply")
        if self.refreshed.get(dev.key) != self.now:  # a transmitter's measurement cycle
            self.refreshed[dev.key] = self.now
            dev.refresh(analog=True)
        reply = handle(dev, struct.pack(">BHH", _FC[req.table], req.start, req.count))
        if reply[0] & 0x80:
            raise ReadError("exception", where, f"exception {reply[1]}", reply[1])
        data = reply[2:]
        if req.table.is_bits:
            return [bool((data[i // 8] >> (i % 8)) & 1) for i in range(req.count)]
        return list(struct.unpack(f">{req.count}H", data))

    def close(self) -> None:
        pass


class Handoff:
    """The simulator's MQTT sensors publishing straight into the agents' inputs."""

    def __init__(self, inputs: dict[str, MqttInput]) -> None:
        self.inputs = inputs  # topic -> input
        self.messages = 0

    async def publish(self, topic: str, payload: bytes) -> None:
        inp = self.inputs.get(topic)
        if inp is not None:
            self.messages += 1
            inp.handle(topic, payload)


@dataclass
class Gateway:
    """One gateway's agent side: its pollers, inputs, filter and what waits to go up."""

    id: str
    site: str
    filter: ReportFilter
    pollers: list[BusPoller] = field(default_factory=list)
    inputs: list[MqttInput] = field(default_factory=list)
    pending: list[Reading] = field(default_factory=list)
    seq: int = 0

    def sink(self, readings: Sequence[tuple[Reading, PointKind]]) -> None:
        """What ``Agent.sink`` does: keep what the report-on-change filter admits."""
        self.pending += [r for r, kind in readings if self.filter.admit(r, kind)]


class SiteRun:
    """The site on one clock; ``async with`` starts the pollers, leaving stops them."""

    def __init__(
        self,
        cfg: SiteConfig,
        profiles: ProfileRegistry,
        directory: Path,
        *,
        start: float,
        seed: int = 1,
        step: float = 5.0,
        mqtt_interval: float = 60.0,
        min_poll: float = 0.0,
    ) -> None:
        self.cfg, self.profiles, self.step_s = cfg, profiles, step
        self.clock = ManualClock(start)
        self.plant = Plant(cfg, profiles, seed=seed, start=start, journal=Journal(1))
        self.faults = FaultSet(self.plant.targets())
        self._fault_version = -1
        s = cfg.agent
        deadbands = {
            PointKind.TEMPERATURE: s.deadband.temperature,
            PointKind.HUMIDITY: s.deadband.humidity,
            PointKind.SETPOINT: s.deadband.setpoint,
            PointKind.COUNTER: s.deadband.counter,
        }
        self.gateways: list[Gateway] = []
        self.links: list[ImageLink] = []
        by_topic: dict[str, MqttInput] = {}
        mqtt_devices: list[SimDevice] = []
        for gw in cfg.gateways:
            g = Gateway(gw.id, gw.site, ReportFilter(deadbands, s.max_silence))
            for bus in gw.buses:
                configs = [d for d in gw.devices if d.bus == bus.id]
                sims = [self.plant.devices[f"{gw.id}/{d.id}"] for d in configs]
                if isinstance(bus, MqttBus):
                    devs = mqtt_devices_of(gw, configs, profiles)
                    inp = MqttInput(bus, devs, g.sink, clock=self.clock)
                    g.inputs.append(inp)
                    by_topic.update(dict.fromkeys(inp._by_topic, inp))
                    mqtt_devices += sims
                    continue
                slowed = [  # a long run may poll less often
                    d.model_copy(update={"poll_interval": max(d.poll_interval, min_poll)})
                    for d in configs
                ]
                states = modbus_states_of(gw, slowed, profiles, s)
                link = ImageLink(bus, gw.id, sims, self.faults)
                self.links.append(link)
                # a line in process has no wire, so no inter-frame gap to keep
                wire = (
                    bus.model_copy(update={"inter_frame_gap": 0.0})
                    if isinstance(bus, RtuBus)
                    else bus
                )
                g.pollers.append(
                    BusPoller(
                        wire,
                        states,
                        g.sink,
                        backoff_max=s.backoff_max,
                        link=link,  # type: ignore[arg-type]  # ModbusLink's read/close
                        clock=self.clock,
                    )
                )
            self.gateways.append(g)
        self.handoff = Handoff(by_topic)
        self.sensors = MqttSensors(
            host="in-process",
            port=0,
            devices=mqtt_devices,
            faults=self.faults,
            journal=self.plant.journal,
            interval=mqtt_interval,
            clock=self.clock,
        )
        self._mqtt_devices = mqtt_devices
        self._mqtt_analog = -1e18
        hub = directory / "hub"
        hub.mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(hub / "store.db")  # the ingest needs one; nothing is written
        self.ingest = Ingest(cfg, profiles, self.store, clock_ms=self.clock.now_ms)
        self.audit = AuditLog(hub / "hub.db")
        self.notifiers = build_all(cfg.alerts.notifiers, base_dir=hub)
        self.alerts = AlertService(
            cfg,
            profiles,
            db_path=hub / "hub.db",
            audit=self.audit.record,
            notifiers=self.notifiers,
            link_key=bytes(32),
            clock=self.clock,
        )
        self.outbox = hub / "sms-outbox.jsonl"
        self._tasks: list[asyncio.Task[None]] = []
        self.rejected: list[str] = []
        self._kinds = {p.sid: p.kind for p in self.alerts.points}
        self._defrosting: dict[SeriesId, bool] = {}
        self.defrosts: Counter[str] = Counter()  # defrosts the hub saw end, per flag series
        self.latest: dict[str, Reading] = {}  # the last reading the hub took, per series

    @property
    def pollers(self) -> list[BusPoller]:
        return [p for g in self.gateways for p in g.pollers]

    async def __aenter__(self) -> SiteRun:
        self.plant.apply_faults(self.faults)
        self.plant.advance(self.clock.now(), wall=self.clock.now(), refresh_all=True)
        self.alerts.start()
        for g in self.gateways:  # the hub hears each gateway's retained "online"
            self.alerts.on_gateway(g.id, online=True)
        self._tasks = [asyncio.create_task(p.run(), name=f"poll-{p.bus.id}") for p in self.pollers]
        self._loops = sum(len(p.devices) for p in self.pollers)  # one sleep each when idle
        await self._settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.alerts.aclose()
        await self.store.close()
        self.audit.close()

    async def _settle(self) -> None:
        """Let every poller woken by the clock finish its turn and sleep again."""
        sleeping = self._loops
        now = self.clock.now()
        for _ in range(100):
            await asyncio.sleep(0)
            if self.clock.sleeping() == sleeping:
                nxt = self.clock.next_wake()
                if nxt is None or nxt > now:
                    return
        raise AssertionError(f"pollers did not settle at {self.clock.now()}")

    def inject(self, kind: str, target: str, **kw: Any) -> None:
        self.faults.add(kind, target, **kw)

    async def step(self) -> None:
        """One step of ``step`` simulated seconds (see the module doc)."""
        t = self.clock.now() + self.step_s
        if self.faults.version != self._fault_version:
            self._fault_version = self.faults.version
            self.plant.apply_faults(self.faults)
        self.plant.advance_rooms(t)
        for link in self.links:
            link.now = t
        self.clock.set(t)
        await self._settle()
        analog = t - self._mqtt_analog >= MQTT_MEASURE_S
        if analog:
            self._mqtt_analog = t
        for dev in self._mqtt_devices:  # doors every step, their thermometers less often
            dev.refresh(analog=analog)
        await self.sensors.publish_due(self.handoff)
        self._uplink()
        self.alerts.tick()
        if self.alerts.dispatcher.pending():
            await self.alerts.dispatcher.flush()

    async def run_for(self, seconds: float) -> None:
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-6:
            await self.step()

    def _uplink(self) -> None:
        for g in self.gateways:
            if not g.pending:
                continue
            g.seq += 1
            batch = Batch(g.id, g.site, "e-site", g.seq, g.pending)
            g.pending = []
            topic = self.ingest.topics.topic(g.id, "telemetry")
            try:
                accepted = self.ingest.check(topic, encode_batch(batch), self.clock.now_ms())
            except RejectedError as exc:
                self.rejected.append(f"{exc.reason}: {exc}")
                continue
            self.alerts.on_readings(list(accepted.readings))
            for r in accepted.readings:
                self.latest[str(r.series)] = r
                if self._kinds.get(r.series) is PointKind.DEFROST and r.value is not None:
                    on = r.value >= 0.5
                    if self._defrosting.get(r.series, False) and not on:
                        self.defrosts[str(r.series)] += 1
                    self._defrosting[r.series] = on

    # --- what the hub did ------------------------------------------------------------------

    def raised(self) -> list[AlertRow]:
        """Every alert the hub opened, oldest first."""
        return self.alerts.store.query(limit=100_000)[::-1]

    def texts(self) -> list[dict[str, Any]]:
        """The SMS the file notifier wrote."""
        if not self.outbox.exists():
            return []
        return [json.loads(line) for line in self.outbox.read_text("utf-8").splitlines()]


def describe(a: AlertRow) -> str:
    """One line saying what an alert was, for assertion messages."""
    return (
        f"{a.rule}/{a.tier} {a.series or a.room or a.gateway} state={a.state} "
        f"value={a.value} limit={a.limit_value} peak={a.peak} since={a.since_ms}"
    )

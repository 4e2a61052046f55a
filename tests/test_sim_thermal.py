"""The pure thermal model and sorting line, driven by an injected clock (plain numbers)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from coldchain.config.site import Room
from simulator.room_params import HOUR, RoomParams, params_for
from simulator.seeding import seeded
from simulator.sorting import LineParams, SortingLine
from simulator.thermal import DefrostPhase, RoomModel

T0 = 1_764_300_000.0  # 2025-11-28 03:20 UTC, 11:20 in Shanghai


def room(cls: str) -> Room:
    return Room.model_validate({"id": cls, "name": cls, "class": cls})


def model(cls: str, seed: int = 1, **changes: float) -> RoomModel:
    params = params_for(room(cls), seeded(seed, cls, "params"))
    if changes:
        params = dataclasses.replace(params, **changes)  # type: ignore[arg-type]
    return RoomModel(params, rng=seeded(seed, cls, "events"), start=T0)


def trace(m: RoomModel, hours: float, step: float = 60.0) -> list[tuple[float, float, str]]:
    out = []
    t, end = m.t, m.t + hours * HOUR
    while t < end:
        t += step
        m.advance_to(t)
        out.append((t, m.air, str(m.defrost)))
    return out


def test_compressor_failure_warms_a_chilled_room_at_a_plausible_rate() -> None:
    m = model("chilled", door_rate=0.0)
    m.advance_to(T0 + 2 * HOUR)
    m.compressor_failed = True
    before = m.air
    m.advance_to(m.t + HOUR)
    rate = m.air - before
    assert 0.5 <= rate <= 10, f"warmed {rate:.2f} °C in the first hour"
    highest_ambient = m.params.surroundings_mean + m.params.surroundings_amplitude
    for _t, air, _ in trace(m, 72, step=600):
        assert air <= highest_ambient + 1e-6, f"{air:.2f} °C is above the ambient"
    assert m.air > 10, "three days without cooling should bring the room near ambient"


def test_compressor_failure_warms_a_frozen_room_too() -> None:
    m = model("frozen", door_rate=0.0)
    m.advance_to(T0 + HOUR)
    m.compressor_failed = True
    before = m.air
    m.advance_to(m.t + HOUR)
    assert 0.5 <= m.air - before <= 10


def test_a_door_left_open_raises_the_temperature() -> None:
    closed, stuck = model("chilled", door_rate=0.0), model("chilled", door_rate=0.0)
    stuck.door_stuck_open = True
    closed.advance_to(T0 + 1800)
    stuck.advance_to(T0 + 1800)
    assert stuck.door_open
    assert stuck.air > closed.air + 2, f"door open {stuck.air:.2f} vs closed {closed.air:.2f}"
    assert stuck.door_alarm, "the controller raises its door alarm after its delay"
    assert stuck.rh != closed.rh


def test_doors_open_now_and_then_for_seconds_to_a_minute() -> None:
    m = model("chilled")
    openings: list[float] = []
    opened_at: float | None = None
    for t in range(int(T0), int(T0 + 24 * HOUR), 1):
        m.advance_to(t)
        if m.door_open and opened_at is None:
            opened_at = t
        elif not m.door_open and opened_at is not None:
            openings.append(t - opened_at)
            opened_at = None
    assert 20 <= len(openings) <= 120, f"{len(openings)} openings in a day"
    assert all(4 <= d <= 61 for d in openings), openings


def _defrost_cycle(cls: str) -> tuple[float, float, float, float, RoomModel]:
    """Air before, peak, duration (s) of the first defrost, and air 1 h after it ended."""
    m = model(cls, door_rate=0.0)
    samples = trace(m, 12, step=30)
    start = next(i for i, (_t, _a, phase) in enumerate(samples) if phase == "defrost")
    end = next(i for i in range(start, len(samples)) if samples[i][2] == "off")
    before = samples[start - 1][1]
    peak = max(a for _t, a, _p in samples[start : end + 10])
    duration = samples[end][0] - samples[start][0]
    after = next(a for t, a, _p in samples[end:] if t >= samples[end][0] + HOUR)
    return before, peak, duration, after, m


def test_a_frozen_defrost_lifts_the_air_for_minutes_and_it_recovers() -> None:
    before, peak, duration, after, m = _defrost_cycle("frozen")
    assert 15 * 60 <= duration <= 30 * 60, f"defrost took {duration / 60:.0f} min"
    assert peak - before >= 3, f"defrost lifted the air {peak - before:.2f} °C"
    assert peak < -5, "an electric defrost heats the coil, not the room, to above freezing"
    assert after <= -18, f"one hour after the defrost the room is at {after:.2f} °C"
    assert m.params.heater_rate > 0


def test_a_chilled_defrost_is_off_cycle_and_recovers_within_the_band() -> None:
    before, peak, duration, after, m = _defrost_cycle("chilled")
    assert m.params.heater_rate == 0, "chilled rooms defrost by stopping the compressor"
    assert 0.3 <= peak - before <= 3, f"off-cycle defrost lifted the air {peak - before:.2f} °C"
    assert 20 * 60 <= duration <= 40 * 60
    assert 0 <= after <= 4, f"one hour after the defrost the room is at {after:.2f} °C"


def test_frozen_and_chilled_rooms_differ() -> None:
    frozen, chilled = model("frozen").params, model("chilled").params
    assert frozen.setpoint <= -20 < 0 < chilled.setpoint < 4
    assert frozen.defrost_interval < chilled.defrost_interval
    assert frozen.heater_rate > 0 == chilled.heater_rate
    assert frozen.tau_leak > chilled.tau_leak


def test_the_thermostat_keeps_a_chilled_room_in_its_band_most_of_a_day() -> None:
    m = model("chilled")
    samples = trace(m, 24)
    inside = sum(1 for _t, a, _p in samples if 0 <= a <= 4) / len(samples)
    assert inside > 0.9, f"only {inside:.0%} of the day within 0-4 °C"
    assert m.compressor_starts > 10, "a thermostat cycles"


def test_a_power_cut_stops_compressor_and_fans() -> None:
    m = model("frozen", door_rate=0.0)
    m.advance_to(T0 + HOUR)
    m.power_cut = True
    m.advance_to(T0 + 2 * HOUR)
    assert not m.compressor_running
    assert not m.fans_on
    assert not m.relay
    assert m.air > -20


@pytest.mark.parametrize("seed", [1, 2])
def test_a_seeded_run_is_repeatable(seed: int) -> None:
    a, b = model("chilled", seed), model("chilled", seed)
    assert trace(a, 12) == trace(b, 12)
    c = model("chilled", seed + 10)
    assert trace(c, 12) != trace(model("chilled", seed), 12)


def test_events_do_not_depend_on_how_time_is_stepped() -> None:
    coarse, fine = model("frozen"), model("frozen")
    coarse.advance_to(T0 + 8 * HOUR)
    for t in range(int(T0), int(T0 + 8 * HOUR), 7):
        fine.advance_to(t)
    fine.advance_to(T0 + 8 * HOUR)
    assert coarse.next_defrost == fine.next_defrost
    assert coarse.next_door == fine.next_door
    assert math.isclose(coarse.air, fine.air, abs_tol=0.5)


def test_params_follow_a_room_with_its_own_limits() -> None:
    tea = Room.model_validate(
        {
            "id": "tea",
            "name": "tea",
            "class": "chilled",
            "limits": {"temperature": {"low": 0, "high": 5}},
        }
    )
    p: RoomParams = params_for(tea, seeded(1, "tea"))
    assert 0 < p.setpoint < p.setpoint + p.differential < 5


def test_the_sorting_line_counts_parcels_and_jams_now_and_then() -> None:
    line = SortingLine(LineParams(mean_between_jams=1800), rng=seeded(1, "line"), start=T0)
    counted_while_jammed = 0
    jam_lengths: list[float] = []
    jam_start: float | None = None
    for t in range(int(T0), int(T0 + 6 * HOUR), 10):
        before = line.parcels
        line.advance_to(t)
        if line.jammed and jam_start is None:
            jam_start = t
        elif not line.jammed and jam_start is not None:
            jam_lengths.append(t - jam_start)
            jam_start = None
        elif line.jammed:
            counted_while_jammed += line.parcels - before
    assert line.jams >= 3
    assert all(100 <= d <= 620 for d in jam_lengths), jam_lengths
    assert counted_while_jammed == 0
    assert 0.7 * 1.5 * 6 * HOUR < line.parcels <= 1.5 * 6 * HOUR


def test_a_power_cut_or_a_stop_halts_the_line() -> None:
    line = SortingLine(LineParams(), rng=seeded(1, "line"), start=T0)
    line.advance_to(T0 + 60)
    counted = line.parcels
    line.power_cut = True
    line.advance_to(T0 + 600)
    assert line.parcels == counted
    assert not line.running
    line.power_cut, line.stopped = False, True
    line.advance_to(T0 + 900)
    assert line.parcels == counted
    line.stopped = False
    line.advance_to(T0 + 960)
    assert line.parcels > counted


def test_defrost_phases_follow_each_other() -> None:
    m = model("frozen", door_rate=0.0)
    phases = [p for _t, _a, p in trace(m, 14, step=30)]
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order[:1] == ["off"]
    assert "defrost" in order
    i = order.index("defrost")
    assert order[i : i + 3] == [DefrostPhase.DEFROST, DefrostPhase.DRIP, DefrostPhase.OFF]


@pytest.mark.parametrize("band", [(30.0, 55.0), (85.0, 95.0)])
def test_humidity_stays_in_the_rooms_own_band(band: tuple[float, float]) -> None:
    """A tea store kept dry (30-55 %RH) and a fruit room kept humid (85-95 %RH): the
    simulated air follows the room's band, not its class's usual humidity, except around a
    defrost (the air saturates then; alert rules hold off for it)."""
    low, high = band
    limits = {"temperature": {"low": 0, "high": 5}, "humidity": {"low": low, "high": high}}
    r = Room.model_validate({"id": "r", "name": "r", "class": "chilled", "limits": limits})
    m = RoomModel(params_for(r, seeded(2, "rh", "params")), rng=seeded(2, "rh", "e"), start=T0)
    outside: list[float] = []
    last_defrost = -math.inf
    t = m.t
    for _ in range(24 * 60):
        t += 60.0
        m.advance_to(t)
        if m.defrost is not DefrostPhase.OFF:
            last_defrost = t
        elif t - T0 > 2 * HOUR and t - last_defrost > 0.5 * HOUR:
            outside.append(m.rh)
    assert len(outside) > 12 * 60
    assert low <= min(outside), min(outside)
    assert max(outside) <= high, max(outside)


def test_a_fruit_rooms_humidity_keeps_clear_of_its_band_whatever_the_seed() -> None:
    """A fruit room kept at 85-95 %RH: the air swings between its target with the coil off
    and that less the coil's drying. Varied by 3 % of ~92 %RH, some seeds put the target
    at 94.4 %RH, where a probe's own spread (about 1 %RH) read above 95: a humidity
    warning in a week of normal operation. Every seed keeps 2 %RH clear of both limits."""
    limits = {"temperature": {"low": 0, "high": 4}, "humidity": {"low": 85, "high": 95}}
    r = Room.model_validate({"id": "fruit", "name": "f", "class": "chilled", "limits": limits})
    for seed in range(300):
        p = params_for(r, seeded(seed, "fruit", "params"))
        assert p.rh_base <= 95 - 2, f"seed {seed}: target {p.rh_base:.1f} %RH"
        assert p.rh_base - p.rh_dehumidify >= 85 + 2, f"seed {seed}: {p.rh_base:.1f} %RH"

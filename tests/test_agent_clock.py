"""Clocks a Pi can trust: readings taken while the gateway's clock is not synchronised arrive
marked uncertain ("clock unsynchronised"), and still raise alarms.

The clock's state is the test's to set (a switch the agent asks instead of the kernel), so
the machine the suite runs on, synchronised or not, decides nothing."""

from __future__ import annotations

import time
from pathlib import Path

from coldchain.alerting.views import SeriesView
from coldchain.profiles.schema import PointKind
from coldchain.reading import Quality, Reading, SeriesId
from edge_agent.timekeeping import UNSYNCHRONISED, ClockCheck, ClockStep
from tests.agentkit import agents, all_series, county
from tests.services import Broker, until
from tests.testhub import running_hub

SID = SeriesId("s", "gw", "probe", "temperature")


class Switch:
    """The clock's state as the test sets it; counts how often it was asked."""

    def __init__(self, state: bool | None) -> None:
        self.state, self.asked = state, 0

    def __call__(self) -> bool | None:
        self.asked += 1
        return self.state


def test_good_readings_are_marked_while_the_clock_is_unsynchronised() -> None:
    switch, now = Switch(False), [0.0]
    check = ClockCheck(switch, every=1.0, monotonic=lambda: now[0])
    good = (Reading(SID, 1, 3.5), PointKind.TEMPERATURE)
    bad = (Reading(SID, 2, None, Quality.BAD, "no reply"), PointKind.TEMPERATURE)
    (marked, _), (kept, _) = check.mark([good, bad])
    assert (marked.value, marked.quality, marked.reason) == (3.5, Quality.UNCERTAIN, UNSYNCHRONISED)
    assert kept is bad[0], "a bad reading keeps its own reason"
    assert check.marked == 1
    switch.state = True
    assert check.mark([good]) != [good], "asked at most once a second: still unsynchronised"
    now[0] = 1.0
    assert check.mark([good]) == [good], "synchronised: readings are good again"
    assert switch.asked == 2
    switch.state, now[0] = None, 2.0
    assert check.mark([good]) == [good], "cannot tell (not Linux): nothing is marked"


def test_the_step_at_synchronisation_is_what_the_readings_were_off() -> None:
    """A Pi booted with the time it saved before a 4-hour power cut: once NTP answers the
    clock jumps 4 h ahead, and the check reports that step and how many readings it marked."""
    switch, mono, wall = Switch(False), [0.0], [1_000.0]
    check = ClockCheck(switch, every=1.0, monotonic=lambda: mono[0], wall=lambda: wall[0])
    good = (Reading(SID, 1, 3.5), PointKind.TEMPERATURE)
    check.mark([good, good])
    mono[0], wall[0] = 10.0, 1_010.0
    check.mark([good])
    assert check.last_step is None
    switch.state = True
    mono[0], wall[0] = 11.0, 1_011.0 + 4 * 3600  # NTP stepped the clock 4 h ahead
    assert check.mark([good]) == [good]
    assert check.last_step == ClockStep(at_ms=15_411_000, step_ms=4 * 3600 * 1000, marked=3)
    # unsynchronised again later (a long outage): the next step counts only its own span
    switch.state, mono[0], wall[0] = False, 20.0, 15_420.0
    check.mark([good])
    switch.state, mono[0], wall[0] = True, 21.0, 15_421.0 - 2.5  # slewed back 2.5 s
    check.mark([good])
    assert check.last_step == ClockStep(at_ms=15_418_500, step_ms=-2_500, marked=1)


def test_an_uncertain_value_still_counts_for_the_alarms() -> None:
    view = SeriesView(room="r1", kind="temperature")
    view.update(Reading(SID, 1_000, 12.0, Quality.UNCERTAIN, UNSYNCHRONISED))
    assert (view.value, view.good, view.bad_since_ms) == (12.0, True, None)
    view.update(Reading(SID, 2_000, None, Quality.BAD, "no reply"))
    assert (view.value, view.good, view.bad_since_ms) == (12.0, False, 2_000)


async def test_readings_taken_unsynchronised_arrive_marked(
    tmp_path: Path, mosquitto: Broker
) -> None:
    switch = Switch(False)
    async with (
        county(tmp_path, mosquitto, poll="1s", clock_check=True) as c,
        running_hub(mosquitto.host, mosquitto.port) as hub,
        agents(c, tmp_path, only=["gw-centre-cold"], clock_synchronised=switch) as running,
    ):
        expected = all_series(c.cfg, c.profiles, "gw-centre-cold")
        await until(lambda: expected <= hub.series(), "every series at the hub", within=30)
        first = {s: hub.readings(s)[0] for s in expected}
        with_value = [r for r in first.values() if r.value is not None]
        assert with_value
        assert all(
            (r.quality, r.reason) == (Quality.UNCERTAIN, UNSYNCHRONISED) for r in with_value
        ), [r for r in with_value if r.reason != UNSYNCHRONISED][:3]

        switch.state = True  # NTP answered
        switched_ms = int(time.time() * 1000)
        await until(
            lambda: all(
                any(r.ts_ms >= switched_ms and r.quality is Quality.GOOD for r in hub.readings(s))
                for s in expected
                if any(r.value is not None for r in hub.readings(s))
            ),
            "good readings once synchronised",
            within=30,
        )
        # the check is asked at most once a second: none marked after that
        late = [r for s in expected for r in hub.readings(s) if r.ts_ms > switched_ms + 1_100]
        assert not [r for r in late if r.reason == UNSYNCHRONISED]
        await until(
            lambda: (
                hub.health.get("gw-centre-cold", {}).get("system", {}).get("clock_synchronised")
            ),
            "the health report says the clock is synchronised",
            within=10,
        )
        assert running[0].clock_check.marked >= len(with_value)
        await until(
            lambda: hub.health["gw-centre-cold"]["system"].get("clock_step") is not None,
            "the synchronisation reported",
            within=10,
        )
        step = hub.health["gw-centre-cold"]["system"]["clock_step"]
        assert step["marked"] >= len(with_value)
        assert abs(step["step_ms"]) < 1000, "the test's wall clock did not jump"

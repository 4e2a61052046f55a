"""The sorting line's rules on the example county's sorting hall, with a controlled clock: a
jam that lasts, an emergency stop, a latched fault with its code explained, a full chute, a
chute too warm, the line stopped in its running hours; each a warning for the duty operator,
with the words an SMS says; and what a line rule must be given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from coldchain.alerting.evaluator import Evaluator, Transition
from coldchain.alerting.facts import Message, Places, alert_facts
from coldchain.alerting.messages import render
from coldchain.config.site import SiteConfig
from coldchain.reading import Reading, SeriesId
from firmware_configs import SITES_DIR
from tests.alertkit import PROFILES, evaluator

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: 08:00 in Shanghai
MIN = 60_000
CODES = {17: "皮带驱动过流", 23: "安全门打开"}


def county(*rules: dict[str, Any]) -> SiteConfig:
    doc = yaml.safe_load((SITES_DIR / "county.yaml").read_text())
    doc["alert_rules"] = [{"room_classes": ["sorting"], **r} for r in rules]
    return SiteConfig.model_validate(doc)


def plc(point: str) -> SeriesId:
    return SeriesId("chengqu-centre", "gw-centre-hall", "sorting-plc", point)


class Line:
    """An evaluator of the county with ``rules``, fed the PLC's points minute by minute."""

    def __init__(self, *rules: dict[str, Any], t0: int = T0) -> None:
        self.cfg = county(*rules)
        self.ev: Evaluator = evaluator(self.cfg, now_ms=t0)
        self.t0, self.out = t0, list[Transition]()

    def at(self, minutes: float, **points: float) -> list[Transition]:
        t = self.t0 + round(minutes * MIN)
        got = self.ev.feed([Reading(plc(k), t, v) for k, v in points.items()])
        got += self.ev.tick(t)
        self.out += [x for x in got if x.watch.rule.kind == "line"]
        return got

    def states(self) -> list[tuple[str, str]]:
        return [(x.watch.key.split("/")[0] + ":" + x.watch.series.split("/")[-1], x.to)
                for x in self.out if x.watch.series]  # fmt: skip

    def text(self, x: Transition, lang: str = "zh-CN") -> str:
        facts = alert_facts(
            x.watch,
            _places(self.cfg),
            alert_id=1,
            rule_kind="line",
            value=x.value,
            limit=x.limit,
            since_ms=x.since_ms,
        )
        rule = x.watch.rule
        extra = {f"code/{k}": v for k, v in getattr(rule, "codes", {}).items()}
        msg = Message(kind="warning", alerts=(facts,), now_ms=x.ts_ms, extra=extra)
        return render(msg, "en" if lang == "en" else "zh-CN")


def _places(cfg: SiteConfig) -> Places:
    return Places.of(cfg)


def test_a_jam_is_an_alert_only_once_it_lasts_and_goes_to_the_duty() -> None:
    line = Line({"id": "line-jam", "kind": "line", "event": "jam"})
    line.at(0, jam=0)
    line.at(1, jam=1)
    line.at(11, jam=0)  # cleared by the floor in 10 min: nothing
    line.at(20, jam=1)
    line.at(34, jam=1)
    assert line.states() == [
        ("line-jam:jam", "pending"),
        ("line-jam:jam", "cancelled"),
        ("line-jam:jam", "pending"),
    ]
    line.at(35.5)
    fired = [x for x in line.out if x.to == "firing"]
    assert [x.watch.series for x in fired] == [str(plc("jam"))]
    assert fired[0].watch.policy == "duty"  # the county's warnings: the dispatcher on duty
    assert fired[0].watch.severity == "warning"
    assert "分拣线卡件" in line.text(fired[0])
    assert "sorting line jammed" in line.text(fired[0], "en")
    line.at(40, jam=0)
    assert line.out[-1].to == "resolved"


def test_an_emergency_stop_and_a_fault_with_its_code_explained_at_once() -> None:
    line = Line(
        {"id": "e-stop", "kind": "line", "event": "e_stop"},
        {"id": "fault", "kind": "line", "event": "fault", "codes": CODES},
    )
    line.at(0, e_stop=0, fault=0, fault_code=0)
    line.at(1, e_stop=1)
    line.at(2, fault_code=17, fault=1)
    fired = {x.watch.key.split("/")[0]: x for x in line.out if x.to == "firing"}
    assert set(fired) == {"e-stop", "fault"}
    assert "分拣线急停" in line.text(fired["e-stop"])
    assert fired["fault"].value == 17
    assert "分拣线故障" in line.text(fired["fault"])
    assert "代码17（皮带驱动过流）" in line.text(fired["fault"])  # noqa: RUF001
    assert "code 17 (皮带驱动过流)" in line.text(fired["fault"], "en")


def test_a_full_chute_and_a_warm_one_say_which() -> None:
    line = Line(
        {"id": "chute-full", "kind": "line", "event": "chute_full"},
        {"id": "chute-warm", "kind": "line", "event": "chute_warm", "above": 8, "chutes": [1, 2]},
    )
    line.at(0, chute_2_full=0, chute_1_temperature=4.0, chute_3_temperature=20.0)
    line.at(1, chute_2_full=1, chute_1_temperature=9.5)
    line.at(3.5)
    line.at(7)
    fired = {(x.watch.series or "").split("/")[-1]: x for x in line.out if x.to == "firing"}
    assert set(fired) == {"chute_2_full", "chute_1_temperature"}  # not chute 3: not watched
    assert "2号格口已满" in line.text(fired["chute_2_full"])
    assert "chute 2 full" in line.text(fired["chute_2_full"], "en")
    warm = line.text(fired["chute_1_temperature"])
    assert "1号格口温度过高" in warm
    assert "9.5°C" in warm
    assert "上限8°C" in warm


def test_a_line_stopped_in_its_running_hours_but_not_outside_them() -> None:
    # 22:00 local on 2025-12-31: the line stops after its hours (06:00-22:00)
    t0 = T0 - 10 * 60 * MIN
    line = Line(
        {"id": "stopped", "kind": "line", "event": "stopped", "schedule": ["06:00-22:00"]},
        t0=t0,
    )
    line.at(0, conveyor_running=1)
    line.at(5, conveyor_running=0)
    for m in range(10, 8 * 60, 30):  # the night: no reading changes, nothing said
        line.at(m)
    assert line.out == []
    line.at(8 * 60 + 5)  # 06:05: in its hours, still standing
    line.at(8 * 60 + 21)
    fired = [x for x in line.out if x.to == "firing"]
    assert len(fired) == 1
    assert fired[0].since_ms == t0 + 8 * 60 * MIN  # since 06:00, not since the night
    assert "分拣线在运行时段停机" in line.text(fired[0])
    line.at(8 * 60 + 30, conveyor_running=1)
    assert line.out[-1].to == "resolved"
    # a jam holds the belt in its hours: the jam rule's business, not "stopped"
    line.at(9 * 60, jam=1, conveyor_running=0)
    line.at(9 * 60 + 40)
    assert line.out[-1].to == "resolved"
    line.at(9 * 60 + 45, jam=0)  # cleared, but the belt still stands: a stop now
    line.at(9 * 60 + 66)
    assert line.out[-1].to == "firing"
    assert line.out[-1].since_ms == t0 + (9 * 60 + 45) * MIN


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"event": "chute_warm"}, "needs 'above'"),
        ({"event": "stopped"}, "needs a 'schedule'"),
        ({"event": "stopped", "schedule": ["6-22"]}, "'6-22' is not HH:MM-HH:MM"),
        ({"event": "stopped", "schedule": ["06:00-25:00"]}, "not a time of day"),
        ({"event": "smoke"}, "Input should be 'jam'"),
    ],
)
def test_what_a_line_rule_must_be_given(rule: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        county({"id": "bad", "kind": "line", **rule})


def test_the_sorting_halls_tile_shows_its_line(tmp_path: Path) -> None:
    """The board's tile of the sorting hall: the line's state from its PLC (an emergency
    stop before a fault before a jam before a plain stop), the belt's speed while it runs,
    which chutes are full; rooms without a line show none."""
    from coldchain.alerting.snapshot import SnapshotBuilder
    from dashboards.web.live import Board
    from gateway.registry import Registry
    from tests.test_alert_snapshot import _Fixed

    line = Line()
    registry = Registry(tmp_path / "hub.db", [g.id for g in line.cfg.gateways], health_timeout_s=60)

    def tile(minutes: float, **points: float) -> Any:
        line.at(minutes, **points)
        snap = SnapshotBuilder().build((), line.ev.views)
        tiles = Board(line.cfg, PROFILES, registry, _Fixed(snap)).tiles(line.t0, "zh-CN")
        assert all(t.line is None for t in tiles if t.room != "sorting-hall")
        (hall,) = [t for t in tiles if t.room == "sorting-hall"]
        return hall.line

    assert tile(0) is None  # the PLC has said nothing yet
    now = tile(1, conveyor_running=1, belt_speed=2.0, jam=0, e_stop=0, fault=0, fault_code=0)
    assert (now.state, now.speed, now.chutes_full) == ("running", 2.0, [])
    assert tile(2, chute_3_full=1, chute_1_full=1).chutes_full == [1, 3]
    assert tile(3, conveyor_running=0, jam=1).state == "jam"
    assert tile(4, fault=1, fault_code=23).state == "fault"
    assert tile(4.5).fault_code == 23
    assert tile(5, e_stop=1).state == "e_stop"
    assert tile(6, e_stop=0, fault=0, jam=0, fault_code=0).state == "stopped"

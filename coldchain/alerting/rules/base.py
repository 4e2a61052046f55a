"""What every rule kind shares: which rooms it applies to, its severity and policy, and the
shape of what the evaluator asks of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field

from coldchain.config.base import StrictModel
from coldchain.config.limits import RoomClass
from coldchain.durations import Duration

if TYPE_CHECKING:
    from coldchain.alerting.views import Views
    from coldchain.config.site import Room, Site
    from coldchain.config.topology import PointInfo

ID = r"^[a-z0-9][a-z0-9_-]*$"
Severity = Literal["warning", "alarm"]


class RuleBase(StrictModel):
    """Fields every rule has. Empty selectors mean every site, room or class."""

    id: str = Field(description="rule id, unique; also names its alerts", pattern=ID)
    enabled: bool = Field(default=True, description="false: the rule is not evaluated")
    sites: list[str] = Field(default_factory=list, description="site ids; empty: every site")
    rooms: list[str] = Field(default_factory=list, description="room ids; empty: every room")
    room_classes: list[RoomClass] = Field(
        default_factory=list, description="room classes; empty: every class"
    )
    description: str = Field("", description="what the rule is for, shown to operators")

    def applies_to(self, site: Site, room: Room) -> bool:
        return (
            self.enabled
            and (not self.sites or site.id in self.sites)
            and (not self.rooms or room.id in self.rooms)
            and (not self.room_classes or room.room_class in self.room_classes)
        )

    def due_ms(self, w: Watch, views: Views) -> int | None:
        """The earliest time at which ``check`` could turn bad with no new input (a reading,
        a gateway event): None, the verdict of most kinds moves only with their inputs."""
        return None

    def window_ms(self) -> int | None:
        """The trend window the kind reads from its series' view (None: none)."""
        return None

    def quiet_range(self, w: Watch) -> tuple[float, float] | None:
        """Values of the watch's own series that leave it idle: see
        :meth:`RuleLogic.quiet_range`. None (most kinds): no such range, judge every
        reading."""
        return None


class Graded(StrictModel):
    """A rule with one severity and one escalation policy."""

    severity: Severity = Field("alarm", description="warning or alarm")
    policy: str | None = Field(
        None, description="escalation policy id; absent: alerts.default_policy for the severity"
    )


SensorKind = Literal["temperature", "humidity", "door", "power"]


def _temperature() -> list[SensorKind]:
    return ["temperature"]


class SensorRule(Graded):
    """A rule about the sensors themselves (silent, faulty), per point of chosen kinds."""

    kinds: list[SensorKind] = Field(default_factory=_temperature, description="point kinds watched")

    def sensor_watches(
        self, rule: RuleLogic, points: list[PointInfo], ctx: WatchContext, **extra: Any
    ) -> Iterator[Watch]:
        from coldchain.profiles.schema import PointKind, PointRole

        wanted = {PointKind(k) for k in self.kinds}
        for p in points:
            if p.kind in wanted and p.role is PointRole.ROOM:
                yield series_watch(
                    rule,
                    p,
                    ctx,
                    severity=self.severity,
                    explicit_policy=self.policy,
                    quantity="data",
                    unit="",
                    **extra,
                )


class Tier(StrictModel):
    """One tier of a threshold: how far past the limit, and for how long."""

    delay: Duration = Field(description="how long the value must stay past the limit")
    margin: float = Field(0.0, description="beyond the limit by this much (°C or %RH)", ge=0)
    policy: str | None = Field(None, description="escalation policy id for this tier")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a watched condition holds now. ``since_ms`` is when it began by the data
    (a door's opening, a sensor's last reading), None for "from now"; ``value`` and
    ``limit`` go into the alert and its messages."""

    bad: bool
    value: float | None = None
    limit: float | None = None
    since_ms: int | None = None
    past: bool = True
    """The condition itself holds, not only within the rule's recovery differential
    (hysteresis): ``bad`` and not ``past`` keeps an alert pending or firing but never
    makes a pending one fire. Without it, one sample past a limit followed by a slow
    decay inside the band ran out the delay (a 30-second excursion fired a warning): a
    pending alert fires when its delay has run out and the value is past the limit then;
    the band is for clearing (Dixell ``AFH``)."""


CLEAR = Verdict(bad=False)
"""The shared verdict "the condition does not hold" for a watch that is idle (neither
pending nor firing): the evaluator keeps nothing of such a verdict (no alert to carry a
value or limit), so the rules return this one instead of building one per reading."""


@dataclass(frozen=True, slots=True, eq=False)
class Watch:
    """One rule (tier) applied to one subject: a series, a room or a gateway.

    ``key`` is stable across restarts and identical on the hub and an agent's edge fallback
    (``rule/tier/subject``), so both name the same alert the same way.
    """

    key: str
    rule: RuleLogic
    tier: str  # "warning"/"alarm" for tiered rules, else the severity
    severity: Severity
    policy: str | None
    site: str
    room: str | None
    gateway: str | None
    series: str | None  # str(SeriesId) for series watches
    quantity: str  # temperature, humidity, door, power, gateway, data
    unit: str
    delay_ms: int
    inputs: tuple[str, ...] = field(default=())  # series whose readings re-evaluate it
    suppressible: bool = False  # by defrost, doors and power-up (maintenance always)
    direction: Literal["above", "below"] | None = None
    limit: float | None = None
    timed: bool = False  # re-checked by the clock (stale, gateway offline)


class RuleLogic(Protocol):
    """What the evaluator asks of a rule kind: its watches (built once from the config)
    and whether a watch's condition holds now."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def check(self, w: Watch, views: Views, now_ms: int, active: bool) -> Verdict:
        """Whether the watch's condition holds at ``now_ms``; ``active``: the alert is
        pending or firing (a rule keeps it so when it has no evidence either way, and a
        recovery differential keeps it inside its band: see :attr:`Verdict.past`)."""
        ...

    def due_ms(self, w: Watch, views: Views) -> int | None:
        """For a timed watch, idle: the earliest time at which ``check`` could turn bad by
        the clock alone (None: not by the clock). Never later than that time: the evaluator
        judges the watch then, and not before."""
        ...

    def window_ms(self) -> int | None:
        """The trend window (ms) the evaluator keeps for the watch's series (None: none)."""
        ...

    def quiet_range(self, w: Watch) -> tuple[float, float] | None:
        """``(lo, hi)`` such that, while the watch is idle, a good reading of its own series
        (``w.series``) with ``lo <= value <= hi`` makes ``check`` return :data:`CLEAR`
        whatever else is known, so the evaluator may skip judging it (None: no such range;
        the watch is judged on every reading). Only for watches whose only input is their
        series. For a ``timed`` watch it also promises that such a reading never brings
        ``due_ms`` earlier: the evaluator skips judging it only while it has a timer, which
        then comes up no later than needed."""
        ...


def series_watch(
    rule: RuleLogic,
    p: PointInfo,
    ctx: WatchContext,
    *,
    severity: Severity,
    explicit_policy: str | None,
    quantity: str,
    delay_s: float,
    tier: str | None = None,
    **extra: Any,
) -> Watch:
    """The watch of ``rule`` on one point (the shape every series rule shares)."""
    tier = tier or severity
    return Watch(
        key=f"{rule.id}/{tier}/{p.sid}",
        rule=rule,
        tier=tier,
        severity=severity,
        policy=ctx.policy(severity, explicit_policy),
        site=p.site,
        room=p.room,
        gateway=p.gateway,
        series=str(p.sid),
        quantity=quantity,
        unit=extra.pop("unit", p.unit),
        delay_ms=round(delay_s * 1000),
        inputs=(str(p.sid),),
        **extra,
    )


@dataclass(frozen=True, slots=True)
class WatchContext:
    """What building watches needs besides the room: the default policy per severity and
    the gateways of the room's site."""

    default_policy: dict[str, str | None]
    gateways: tuple[str, ...] = ()

    def policy(self, severity: Severity, explicit: str | None) -> str | None:
        return explicit if explicit is not None else self.default_policy.get(severity)

"""Rule kinds: a discriminated union on ``kind``, one module per kind."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from coldchain.alerting.rules.backup import BackupRule
from coldchain.alerting.rules.door_open import DoorOpenRule
from coldchain.alerting.rules.door_warm import DoorOpenWarmRule
from coldchain.alerting.rules.fault import SensorFaultRule
from coldchain.alerting.rules.forecast import ForecastRule
from coldchain.alerting.rules.gateway import (
    GatewayBacklogRule,
    GatewayClockRule,
    GatewayDiskRule,
    GatewayOfflineRule,
)
from coldchain.alerting.rules.line import LineRule
from coldchain.alerting.rules.power import PowerRule
from coldchain.alerting.rules.rate import RateOfRiseRule
from coldchain.alerting.rules.stale import StaleRule
from coldchain.alerting.rules.threshold import ThresholdRule

AnyRule = (
    ThresholdRule
    | RateOfRiseRule
    | ForecastRule
    | DoorOpenRule
    | DoorOpenWarmRule
    | StaleRule
    | SensorFaultRule
    | GatewayOfflineRule
    | GatewayClockRule
    | GatewayBacklogRule
    | GatewayDiskRule
    | PowerRule
    | LineRule
    | BackupRule
)
Rule = Annotated[AnyRule, Field(discriminator="kind")]

EDGE_KINDS = frozenset({"threshold", "rate_of_rise", "door_open", "door_open_warm", "power"})
"""Kinds an agent evaluates itself when its uplink is down (temperature, doors, power)."""

__all__ = [
    "EDGE_KINDS",
    "AnyRule",
    "BackupRule",
    "DoorOpenRule",
    "DoorOpenWarmRule",
    "ForecastRule",
    "GatewayBacklogRule",
    "GatewayClockRule",
    "GatewayDiskRule",
    "GatewayOfflineRule",
    "LineRule",
    "PowerRule",
    "RateOfRiseRule",
    "Rule",
    "SensorFaultRule",
    "StaleRule",
    "ThresholdRule",
]

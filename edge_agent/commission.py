"""Commissioning on the bus: which profile fits a device found, reading it, setting it.

What ``coldchain modbus scan|read|set`` does after finding the devices
(:mod:`edge_agent.scan`), on the Pi, with the agent's own Modbus link and nothing from the
centre.

**Identify.** For a found device, every shipped Modbus profile is tried against it:

* its identity registers: a ``unit_id`` configuration register that holds the very address
  the device answered on, or a ``baud`` register that holds the baud it answered at, is
  strong evidence; a value that differs, or an exception, rules the profile out;
* its points, read exactly (no holes between them): an exception (no such register) rules
  it out; values that read well are weak evidence (many maps share input registers 1 and 2)
  and values outside a point's valid range count against it (the wrong scale, or a broken
  probe: it does not rule it out);

A profile that is not ruled out fits; the answer says how sure (:class:`Identification`):
``sure`` when exactly one fitting profile has identity evidence, ``likely`` when one fits
on its points alone, ``ambiguous`` when several fit as well as each other (e.g. the same
relay board with different things wired to its inputs), ``unknown`` when none fits.

**Set.** Configuration registers written and read back (:func:`plan_settings`,
:func:`write_settings`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from coldchain.profiles.codec import Decoded, decode_bit, decode_words
from coldchain.profiles.registry import ProfileRegistry
from coldchain.profiles.schema import ConfigRegister, ModbusPoint, ModbusProfile, Table
from coldchain.reading import Quality
from edge_agent.modbus_io import ModbusLink, ReadError, Request
from edge_agent.planner import Block, Limits, plan
from edge_agent.scan import Found, ScanResult

# -- identify ----------------------------------------------------------------------------
Certainty = Literal["sure", "likely", "ambiguous", "unknown"]


@dataclass(slots=True)
class Fit:
    """How one profile fared against a device."""

    profile: str
    strong: list[str] = field(default_factory=list)  # identity registers that agree
    weak: list[str] = field(default_factory=list)  # points that read well
    against: list[str] = field(default_factory=list)  # what rules it out
    odd: list[str] = field(default_factory=list)  # values out of range (or a broken probe)
    unsure: list[str] = field(default_factory=list)  # reads that timed out or garbled

    @property
    def fits(self) -> bool:
        return not self.against and bool(self.strong or self.weak)

    @property
    def rank(self) -> tuple[int, int]:
        return (len(self.strong), len(self.weak) - len(self.odd))


@dataclass(frozen=True, slots=True)
class Identification:
    certainty: Certainty
    best: list[str]  # the profile ids that fit best (one unless ambiguous)
    fits: list[Fit]  # every profile tried, best first

    def summary(self) -> str:
        """One line: which profile, and how sure."""
        if self.certainty == "unknown":
            return "unknown: no shipped profile fits (read it raw, or write a profile)"
        top = next(f for f in self.fits if f.profile == self.best[0])
        why = "; ".join(top.strong) if top.strong else f"{len(top.weak)} points read well"
        if self.certainty == "ambiguous":
            return (
                f"ambiguous: {' or '.join(self.best)} fit equally ({why}); the registers "
                "cannot tell them apart: check the label or the wiring"
            )
        others = [f.profile for f in self.fits if f.fits and f.profile not in self.best]
        also = f"; also fits, less well: {', '.join(others)}" if others else ""
        return f"{self.certainty}: {self.best[0]} ({why}){also}"


class CachedReader:
    """Reads of one device, each asked of the bus once (profiles share registers)."""

    def __init__(self, link: ModbusLink, unit: int) -> None:
        self.link, self.unit = link, unit
        self._cache: dict[tuple[Table, int, int], list[int] | list[bool] | ReadError] = {}

    async def read(self, table: Table, start: int, count: int) -> list[int] | list[bool]:
        key = (table, start, count)
        if key not in self._cache:
            try:
                self._cache[key] = await self.link.read(Request(table, start, count, self.unit))
            except ReadError as exc:
                if exc.kind == "link":
                    raise
                self._cache[key] = exc
        got = self._cache[key]
        if isinstance(got, ReadError):
            raise got
        return got

    @property
    def reads(self) -> int:
        return len(self._cache)


def decode_point(point: ModbusPoint, values: Sequence[int] | Sequence[bool]) -> Decoded:
    """A point's value from the words (or bits) of its own address range."""
    if point.table.is_bits:
        return decode_bit(point, bool(values[0]))
    return decode_words(point, [int(v) for v in values])


async def _check_register(
    reader: CachedReader, reg: ConfigRegister, expected: int, what: str, fit: Fit
) -> None:
    try:
        words = await reader.read(Table.HOLDING, reg.address, 1)
    except ReadError as exc:
        if exc.kind == "exception":
            fit.against.append(f"holding {reg.address:#06x} ({reg.name}): {exc.reason}")
        else:
            fit.unsure.append(f"holding {reg.address:#06x}: {exc.reason}")
        return
    value = reg.value_of(int(words[0]))
    if value == expected:
        fit.strong.append(f"holding {reg.address:#06x} holds {what} {expected}")
    else:
        shown = "an unknown code" if value is None else f"{value:g}"
        fit.against.append(f"holding {reg.address:#06x} ({reg.name}) holds {shown}, not {what}")


def modbus_profile(profiles: ProfileRegistry, profile_id: str) -> ModbusProfile:
    """The Modbus profile ``profile_id``; ValueError saying why not (unknown, or MQTT)."""
    try:
        profile = profiles.get(profile_id)
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    if not isinstance(profile, ModbusProfile):
        raise ValueError(f"profile {profile_id} is not a Modbus profile")
    return profile


def point_blocks(profile: ModbusProfile) -> list[Block]:
    """The reads that cover a profile's points and nothing else (no holes: a device may
    refuse an address no point maps, and a scan must not guess)."""
    limits = Limits(
        fill_registers=0,
        fill_bits=0,
        max_registers=profile.max_registers,
        max_bits=profile.max_bits,
        unreadable=tuple(profile.unreadable),
    )
    return plan(profile.points, limits)


async def _check_points(reader: CachedReader, profile: ModbusProfile, fit: Fit) -> None:
    for block in point_blocks(profile):
        try:
            values = await reader.read(block.table, block.start, block.count)
        except ReadError as exc:
            (fit.against if exc.kind == "exception" else fit.unsure).append(
                f"{block.table} {block.start}..{block.end - 1}: {exc.reason}"
            )
            continue
        for p in block.points:
            at = p.address - block.start
            decoded = decode_point(p, values[at : at + p.count])
            if decoded.quality is Quality.GOOD:
                fit.weak.append(p.name)
            elif decoded.reason and "range" in decoded.reason:
                # the wrong map, or the right one with a broken probe: counts against it,
                # but does not rule it out as an exception reply does
                fit.odd.append(f"{p.name}: {decoded.reason}")
            # else a fault sentinel the profile knows (an open probe): no evidence either way


async def identify(
    reader: CachedReader,
    profiles: ProfileRegistry,
    *,
    baud: int | None,
    candidates: Sequence[str] | None = None,
) -> Identification:
    """Try every Modbus profile (or ``candidates``) on the device behind ``reader``."""
    fits = []
    for profile in profiles:
        if not isinstance(profile, ModbusProfile):
            continue
        if candidates is not None and profile.id not in candidates:
            continue
        fit = Fit(profile.id)
        for reg in profile.config_registers:
            if reg.name == "unit_id":
                await _check_register(reader, reg, reader.unit, "its address", fit)
            elif reg.name == "baud" and baud is not None:
                await _check_register(reader, reg, baud, "the baud", fit)
        if not fit.against:
            await _check_points(reader, profile, fit)
        fits.append(fit)
    fits.sort(key=lambda f: (not f.fits, tuple(-r for r in f.rank), f.profile))
    good = [f for f in fits if f.fits]
    if not good:
        return Identification("unknown", [], fits)
    best = [f.profile for f in good if f.rank == good[0].rank]
    if len(best) > 1:
        return Identification("ambiguous", best, fits)
    return Identification("sure" if good[0].strong else "likely", best, fits)


# -- reports (the command line prints them; an agent sends them to the centre) -------
async def scan_report(
    result: ScanResult,
    profiles: ProfileRegistry | None,
    link_for: Callable[[Found], ModbusLink],
) -> dict[str, Any]:
    """A scan's result as data: each device found (identified with ``profiles`` unless
    None, each over its own ``link_for(found)``, closed after), garble, probes, seconds."""
    devices: list[dict[str, Any]] = []
    for found in result.found:
        entry: dict[str, Any] = {
            "unit": found.unit,
            "baud": found.setting.baud if found.setting else None,
            "parity": found.setting.parity if found.setting else None,
            "answer": found.answer,
        }
        if profiles is not None:
            link = link_for(found)
            try:
                ident = await identify(
                    CachedReader(link, found.unit),
                    profiles,
                    baud=found.setting.baud if found.setting else None,
                )
            except ReadError as exc:
                entry["identify_error"] = exc.message
            else:
                entry.update(
                    certainty=ident.certainty,
                    profiles=ident.best,
                    summary=ident.summary(),
                    fits=[f.profile for f in ident.fits if f.fits],
                )
            finally:
                link.close()
        devices.append(entry)
    return {
        "devices": devices,
        "garbled": result.garbled,
        "probes": result.probes,
        "seconds": round(result.seconds, 2),
        "skipped": [str(s) for s in result.skipped],
    }


async def read_report(link: ModbusLink, unit: int, profile: ModbusProfile) -> dict[str, Any]:
    """Every point of ``profile`` read from ``unit`` and decoded (value, unit, raw words, the
    reason a value is bad), then its configuration registers; ``answered``: how many reads
    got any answer (0: a wrong address or baud). A link that cannot open raises."""
    reader = CachedReader(link, unit)
    answered = 0
    points: list[dict[str, Any]] = []
    for block in point_blocks(profile):
        try:
            values = await reader.read(block.table, block.start, block.count)
        except ReadError as exc:
            answered += exc.kind == "exception"
            points.append(
                {"block": f"{block.table} {block.start}..{block.end - 1}", "error": exc.reason}
            )
            continue
        answered += 1
        for p in block.points:
            at = p.address - block.start
            raw = values[at : at + p.count]
            d = decode_point(p, raw)
            points.append(
                {
                    "point": p.name,
                    "value": d.value,
                    "unit": p.unit,
                    "table": str(p.table),
                    "address": p.address,
                    "raw": [int(w) for w in raw],
                    "reason": d.reason,
                }
            )
    config: list[dict[str, Any]] = []
    for reg in profile.config_registers:
        entry: dict[str, Any] = {
            "name": reg.name,
            "address": reg.address,
            "takes_effect": reg.takes_effect,
        }
        try:
            word = int((await reader.read(Table.HOLDING, reg.address, 1))[0])
        except ReadError as exc:
            answered += exc.kind == "exception"
            entry["error"] = exc.reason
        else:
            answered += 1
            entry.update(word=word, value=reg.value_of(word))
        config.append(entry)
    return {
        "unit": unit,
        "profile": profile.id,
        "answered": answered,
        "points": points,
        "config": config,
    }


# -- set ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Written:
    """One configuration register written and read back."""

    register: ConfigRegister
    value: float
    word: int
    read_back: int | None  # None: the read-back failed (see note)
    note: str

    @property
    def confirmed(self) -> bool:
        return self.read_back == self.word


def plan_settings(
    profile: ModbusProfile, assignments: Sequence[str]
) -> list[tuple[ConfigRegister, float, int]]:
    """``name=value`` pairs checked against the profile's configuration registers:
    (register, value, word) each, or ValueError saying what is wrong and what is allowed."""
    regs = {r.name: r for r in profile.config_registers}
    if not regs:
        raise ValueError(f"profile {profile.id} has no configuration registers")
    out = []
    for text in assignments:
        name, eq, value_text = text.partition("=")
        name = name.strip()
        if not eq or name not in regs:
            raise ValueError(
                f"{text!r}: give NAME=VALUE with NAME one of {', '.join(regs)} ({profile.id})"
            )
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError(f"{text!r}: {value_text!r} is not a number") from None
        if name == "unit_id" and not (value.is_integer() and 1 <= value <= 247):
            raise ValueError(f"{text!r}: a unit id is a whole number from 1 to 247")
        reg = regs[name]
        out.append((reg, value, reg.code_of(value)))
    names = [r.name for r, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError("each setting once, please")
    # What moves the device last: a new unit id (where it acts at once, the device stops
    # answering the old address), then the line settings (after which nothing on this line
    # speaks to it at all).
    last = {"unit_id": 1, "baud": 2, "parity": 2}
    out.sort(key=lambda item: last.get(item[0].name, 0))
    return out


async def write_settings(
    link: ModbusLink, unit: int, items: Sequence[tuple[ConfigRegister, float, int]]
) -> list[Written]:
    """Write each register and read it back (from the address the device answers on)."""
    done = []
    answering = unit
    for reg, value, word in items:
        await link.write_register(reg.address, word, answering)
        moved = reg.name == "unit_id" and reg.takes_effect == "at_once"
        if moved:
            answering = int(value)
            await asyncio.sleep(0.05)  # let the device settle on its new address
        if reg.name == "baud" and reg.takes_effect == "at_once":
            done.append(Written(reg, value, word, None, "acts at once: reconnect at the new baud"))
            continue
        try:
            back = await link.read(Request(Table.HOLDING, reg.address, 1, answering))
            read_back: int | None = int(back[0])
            note = ""
        except ReadError as exc:
            read_back, note = None, f"read-back failed: {exc.reason}"
        if reg.takes_effect == "after_power_cycle" and read_back == word:
            note = "stored; the device acts on it after a power cycle"
        elif moved and read_back == word:
            note = f"acts at once: the device now answers on unit {answering}"
        done.append(Written(reg, value, word, read_back, note))
    return done

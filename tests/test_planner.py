"""The request planner: fewest requests, never past the limits, fences respected, optimal."""

from __future__ import annotations

import random

import pytest

from coldchain.profiles.schema import AddressRange, ModbusPoint, Table
from edge_agent.planner import Block, Limits, optimal_request_count, plan, split_block


def pt(name: str, address: int, type_: str = "int16", table: str = "holding") -> ModbusPoint:
    kind = "status" if table in ("coil", "discrete") else "temperature"
    vtype = "bit" if table in ("coil", "discrete") else type_
    return ModbusPoint.model_validate(
        {"name": name, "kind": kind, "table": table, "address": address, "type": vtype}
    )


def spans(blocks: list[Block]) -> list[tuple[str, int, int]]:
    return [(str(b.table), b.start, b.count) for b in blocks]


def test_merges_across_small_holes_only() -> None:
    points = [pt("a", 0), pt("b", 1), pt("c", 5), pt("d", 40)]
    assert spans(plan(points, Limits(fill_registers=8))) == [("holding", 0, 6), ("holding", 40, 1)]
    assert spans(plan(points, Limits(fill_registers=0))) == [
        ("holding", 0, 2),
        ("holding", 5, 1),
        ("holding", 40, 1),
    ]


def test_tables_are_never_merged_and_wide_types_count() -> None:
    points = [pt("t", 0, "float32"), pt("n", 2, "uint32"), pt("r", 0, table="input")]
    assert spans(plan(points)) == [("holding", 0, 4), ("input", 0, 1)]


def test_request_limit_and_device_lower_limit() -> None:
    points = [pt(f"p{i}", i) for i in range(300)]
    blocks = plan(points)
    assert [b.count for b in blocks] == [125, 125, 50]
    assert [b.count for b in plan(points, Limits(max_registers=16))][:2] == [16, 16]
    bits = [pt(f"b{i}", i, table="coil") for i in range(2500)]
    assert [b.count for b in plan(bits)] == [2000, 500]


def test_never_spans_an_unreadable_range() -> None:
    points = [pt("a", 10), pt("b", 14)]
    hole = AddressRange(table=Table.HOLDING, start=12, end=12)
    assert spans(plan(points, Limits(unreadable=(hole,)))) == [
        ("holding", 10, 1),
        ("holding", 14, 1),
    ]
    other_table = AddressRange(table=Table.INPUT, start=12, end=12)
    assert spans(plan(points, Limits(unreadable=(other_table,)))) == [("holding", 10, 5)]


def test_learned_barrier_splits_at_the_widest_hole() -> None:
    points = [pt("a", 0), pt("b", 1), pt("c", 7), pt("d", 9)]
    (block,) = plan(points)
    barrier = split_block(block)
    assert barrier == (Table.HOLDING, 7)
    halves = plan(points, Limits(barriers=frozenset({barrier})))
    assert spans(halves) == [("holding", 0, 2), ("holding", 7, 3)]
    assert split_block(Block(Table.HOLDING, 0, 1, (points[0],))) is None


def test_a_block_without_holes_is_bisected() -> None:
    points = [pt("a", 0), pt("b", 1), pt("c", 2), pt("d", 3)]
    (block,) = plan(points)
    assert split_block(block) == (Table.HOLDING, 2)


def test_overlapping_points_stay_in_one_request() -> None:
    word = pt("status", 8, "uint16")
    bit = ModbusPoint.model_validate(
        {"name": "door", "kind": "door", "table": "holding", "address": 8, "type": "bit", "bit": 3}
    )
    assert spans(plan([bit, word], Limits(fill_registers=0))) == [("holding", 8, 1)]


@pytest.mark.parametrize("seed", range(200))
def test_greedy_reaches_the_optimum(seed: int) -> None:
    rng = random.Random(seed)
    types = ["int16", "uint16", "int32", "float32", "float64"]
    points = [
        pt(f"p{i}", rng.randrange(0, 400), rng.choice(types), rng.choice(["holding", "input"]))
        for i in range(rng.randrange(1, 30))
    ]
    holes = tuple(
        AddressRange(table=Table.HOLDING, start=s, end=s + rng.randrange(0, 3))
        for s in rng.sample(range(400), 3)
    )
    points = [
        p
        for p in points
        if not any(h.table == p.table and p.address <= h.end and h.start < p.end for h in holes)
    ]
    if not points:
        return
    limits = Limits(
        fill_registers=rng.randrange(0, 20), max_registers=rng.randrange(8, 126), unreadable=holes
    )
    blocks = plan(points, limits)
    assert len(blocks) == optimal_request_count(points, limits)
    covered = sorted(p.name for b in blocks for p in b.points)
    assert covered == sorted(p.name for p in points)
    for b in blocks:
        assert b.count <= limits.max_registers
        assert all(b.start <= p.address and p.end <= b.end for p in b.points)
        assert not any(h.table == b.table and h.start < b.end and b.start <= h.end for h in holes)

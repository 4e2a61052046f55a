"""The register image of a simulated Modbus device: the four tables, which addresses exist,
and which the device refuses.

An address exists when a point of the profile (or a configuration register) covers it. A
request touching an address that does not exist, or that the profile lists as
``unreadable``, gets exception 02, as a strict device does. With ``serve_gaps`` the device
answers 0 for unmapped addresses between its first and last mapped one (as many devices
do), still refusing the ``unreadable`` ranges.
"""

from __future__ import annotations

from coldchain.profiles.schema import ModbusPoint, ModbusProfile, Table, ValueType
from simulator.pdu import ExceptionCode, SlaveError


class RegisterImage:
    """Words of the input and holding tables, bits of the coil and discrete tables."""

    def __init__(self, profile: ModbusProfile, *, serve_gaps: bool = False) -> None:
        self.serve_gaps = serve_gaps
        self.cells: dict[Table, dict[int, int]] = {t: {} for t in Table}
        for p in profile.points:
            for a in range(p.address, p.end):
                self.cells[p.table][a] = 0
        for c in profile.config_registers:
            self.cells[Table.HOLDING][c.address] = 0
        self._unreadable = [(r.table, r.start, r.end) for r in profile.unreadable]
        self._span = {t: (min(cells), max(cells)) for t, cells in self.cells.items() if cells}

    def exists(self, table: Table, address: int) -> bool:
        if any(t == table and s <= address <= e for t, s, e in self._unreadable):
            return False
        if address in self.cells[table]:
            return True
        span = self._span.get(table)
        return self.serve_gaps and span is not None and span[0] <= address <= span[1]

    def check(self, table: Table, address: int, count: int) -> None:
        """Raise exception 02 if any address of the range does not exist."""
        for a in range(address, address + count):
            if not self.exists(table, a):
                raise SlaveError(
                    ExceptionCode.ILLEGAL_DATA_ADDRESS, f"{table} address {a} does not exist"
                )

    def get(self, table: Table, address: int, count: int) -> list[int]:
        self.check(table, address, count)
        cells = self.cells[table]
        return [cells.get(a, 0) for a in range(address, address + count)]

    def put(self, table: Table, address: int, values: list[int]) -> None:
        cells = self.cells[table]
        for i, v in enumerate(values):
            cells[address + i] = v

    def put_point(self, point: ModbusPoint, words: list[int]) -> None:
        """Store a point's encoded words; a bit of a register keeps its neighbours' bits."""
        if point.table.is_bits:
            self.cells[point.table][point.address] = 1 if words[0] else 0
        elif point.type is ValueType.BIT:
            assert point.bit is not None
            mask = 1 << point.bit
            cells = self.cells[point.table]
            cells[point.address] = (cells.get(point.address, 0) & ~mask) | (words[0] & mask)
        else:
            self.put(point.table, point.address, words)

    def point_words(self, point: ModbusPoint) -> list[int]:
        cells = self.cells[point.table]
        return [cells.get(a, 0) for a in range(point.address, point.end)]

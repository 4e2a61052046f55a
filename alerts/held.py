"""PostgreSQL: the alert and notification rows one transaction of the alert store writes,
held back and written together just before its commit (:class:`alerts.store.AlertStore`;
why: its module docstring)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from coldchain.statedb import StateConn

TABLES = ("alerts", "notifications")


class HeldRows:
    """PostgreSQL: the alert and notification rows one transaction writes, held back until
    its commit (see the module docstring)."""

    def __init__(self) -> None:
        self.inserts: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TABLES}
        self.updates: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in TABLES}

    def insert(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        self.inserts[table][row_id] = dict(values)

    def update(self, table: str, row_id: int, values: dict[str, Any]) -> None:
        new = self.inserts[table].get(row_id)
        if new is not None:  # made in this transaction: written once, as it ends
            new.update(values)
        else:
            self.updates[table].setdefault(row_id, {}).update(values)

    def write(self, db: StateConn) -> None:
        """Every held row, changes to rows already there first (an alert resolved frees
        its watch's key for a new one: the open key is unique), then the new rows; one
        ``executemany`` per table and set of columns."""
        for table in TABLES:
            shapes: defaultdict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
            for row_id, values in self.updates[table].items():
                shapes[tuple(values)].append([*values.values(), row_id])
            for cols, rows in shapes.items():
                sets = ", ".join(f"{c} = ?" for c in cols)
                db.executemany(f"UPDATE {table} SET {sets} WHERE id = ?", rows)  # noqa: S608
        for table in TABLES:
            shapes = defaultdict(list)
            for row_id, values in self.inserts[table].items():
                shapes[tuple(values)].append([row_id, *values.values()])
            for cols, rows in shapes.items():
                names, marks = ", ".join(("id", *cols)), ", ".join("?" * (len(cols) + 1))
                db.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608
        self.inserts, self.updates = {t: {} for t in TABLES}, {t: {} for t in TABLES}


def write_held(db: StateConn, held: list[HeldRows]) -> None:
    for d in held:
        d.write(db)

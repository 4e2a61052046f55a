"""Who may do what: the ranked roles, the principal a request acts as, and the one rank check.

Roles are ranked, each allowed what the ones below it are: operator (live board, rooms,
acknowledge alerts) < technician (+ gateways, room maintenance) < manager (+ reports, rule
edits, audit trail) < admin (+ users). Apart from the ranks, an auditor reads what every role
reads and changes nothing (GMP Annex 11, 21 CFR Part 11: an inspector's account): the guard
refuses every request of theirs that is not a read. Pure, without FastAPI (the core installs on a Pi
without it): the hub's auth (``hub.auth``) turns a :class:`Guard` into the one route
dependency, and the routers of ``alerts``, ``dashboards`` and ``hub`` take that guard as a
parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final


class Role(StrEnum):
    """A user's role; members are declared lowest first and compare by that rank."""

    OPERATOR = "operator"
    TECHNICIAN = "technician"
    MANAGER = "manager"
    ADMIN = "admin"
    AUDITOR = "auditor"  # outside the ranks: reads everything, changes nothing

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def read_only(self) -> bool:
        return self is Role.AUDITOR

    def covers(self, needed: Role | str) -> bool:
        """True when this role may do what ``needed`` may (it ranks at least as high); an
        auditor may read what any role may."""
        return self is Role.AUDITOR or self.rank >= Role(needed).rank


ROLES: Final = tuple(Role)
_RANKS: Final = {role: i for i, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a logged-in user's name and role."""

    name: str
    role: Role

    def allows(self, needed: Role | str) -> bool:
        """True when this principal holds ``needed`` or a higher role."""
        return self.role.covers(needed)

    def refusal(self, needed: Role | str, *, changes: bool = True) -> str | None:
        """Why this principal may not do what needs ``needed`` (``changes``: the request
        changes something, it is not a read); None when it may."""
        if self.role.read_only and changes:
            return f"{self.name} is an auditor: an auditor reads everything and changes nothing"
        if self.allows(needed):
            return None
        return f"{self.name} is {self.role}; this needs {Role(needed)} or above"


Guard = Callable[[Role], Any]
"""A role -> the route dependency that yields the request's :class:`Principal` when it holds
that role, and refuses the request otherwise (401 without a session, 403 below the role).
The hub's is ``hub.auth.Auth.require``; a router uses it as a parameter default
(``user: Principal = guard(Role.OPERATOR)``) or in ``dependencies=[guard(role)]``."""

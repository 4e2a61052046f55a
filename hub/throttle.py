"""Failed logins, counted per account and per client address, and the lockout they earn.

Each login attempt is counted as a failure when it starts (so a burst of parallel attempts
cannot slip past the count while their password checks run) and forgiven for the account
when it succeeds. After ``free`` failures within ``window_s`` the key is locked for
``base_s``, doubling with each further failure up to ``max_s``. While a key is locked an
attempt is refused before any password check, so a flood costs no scrypt. Time comes from
the injectable ``clock`` (seconds, monotonic by default), so tests never sleep.

The counts live in the process: several ``--role web`` workers each count their own, and
behind a reverse proxy every client shares the proxy's address (the address limit is
larger than the account limit for that reason, and for a warehouse behind one NAT).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Scope = Literal["account", "address"]
MAX_KEYS: Final = 10_000  # records kept per scope; the oldest unlocked ones go first


@dataclass(frozen=True, slots=True)
class Lock:
    """A refused or just-earned lock: which key, and for how much longer."""

    scope: Scope
    seconds: float
    failures: int


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_s: float = 0.0
    locked_until_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Policy:
    """How many failures are free within ``window_s``, and the lock after them."""

    free: int
    window_s: float = 3600.0
    base_s: float = 30.0
    max_s: float = 900.0

    def lock_s(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(failures - self.free, 32))


ACCOUNT: Final = Policy(free=5)
ADDRESS: Final = Policy(free=20)


class _Counter:
    def __init__(self, policy: Policy, max_keys: int) -> None:
        self.policy, self.max_keys = policy, max_keys
        self.records: dict[str, _Record] = {}

    def _live(self, key: str, now: float) -> _Record | None:
        rec = self.records.get(key)
        if rec is None:
            return None
        if now >= rec.locked_until_s and now - rec.last_s > self.policy.window_s:
            del self.records[key]  # forgotten: the window has passed
            return None
        return rec

    def locked_s(self, key: str, now: float) -> float:
        rec = self._live(key, now)
        return max(0.0, rec.locked_until_s - now) if rec else 0.0

    def fail(self, key: str, now: float) -> float:
        """Count a failure; the lock it starts (seconds), 0 for none."""
        rec = self._live(key, now)
        if rec is None:
            self._make_room(now)
            rec = self.records[key] = _Record()
        else:
            self.records[key] = self.records.pop(key)  # newest last
        rec.failures += 1
        rec.last_s = now
        wait = self.policy.lock_s(rec.failures)
        if wait:
            rec.locked_until_s = now + wait
        return wait

    def forgive(self, key: str, *, all_of_it: bool) -> None:
        rec = self.records.get(key)
        if rec is None:
            return
        if all_of_it or rec.failures <= 1:
            del self.records[key]
        else:
            rec.failures -= 1

    def _make_room(self, now: float) -> None:
        if len(self.records) < self.max_keys:
            return
        for key in list(self.records):
            self._live(key, now)
        for key in list(self.records):
            if len(self.records) < self.max_keys:
                return
            if self.records[key].locked_until_s <= now:
                del self.records[key]


class LoginThrottle:
    """Per-account and per-address login failures (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        account: Policy = ACCOUNT,
        address: Policy = ADDRESS,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.clock = clock
        self._accounts = _Counter(account, max_keys)
        self._addresses = _Counter(address, max_keys)
        self.refused = 0  # attempts refused while locked, since start

    @staticmethod
    def _account(name: str) -> str:
        return name.strip().casefold()[:200]

    def begin(self, name: str, address: str) -> tuple[Lock | None, Lock | None]:
        """Start an attempt: ``(refusal, None)`` when the account or the address is
        locked (nothing counted, no password to check), else ``(None, earned)``: the attempt
        is counted as a failure until :meth:`succeeded`, and ``earned`` is the lock this
        count has just started, if any (the attempt itself still goes ahead)."""
        now = self.clock()
        keys: tuple[tuple[Scope, _Counter, str], ...] = (
            ("account", self._accounts, self._account(name)),
            ("address", self._addresses, address),
        )
        for scope, counter, key in keys:
            wait = counter.locked_s(key, now)
            if wait > 0:
                self.refused += 1
                return Lock(scope, wait, counter.records[key].failures), None
        earned: Lock | None = None
        for scope, counter, key in keys:
            wait = counter.fail(key, now)
            if wait and earned is None:
                earned = Lock(scope, wait, counter.records[key].failures)
        return None, earned

    def succeeded(self, name: str, address: str) -> None:
        """The attempt was right: the account starts afresh; the address is forgiven this
        one attempt only (a valid account must not wipe an address's failures)."""
        self._accounts.forgive(self._account(name), all_of_it=True)
        self._addresses.forgive(address, all_of_it=False)

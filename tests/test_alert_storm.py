"""An alert storm: 200 rooms lose power at once. Every transition is audited exactly once,
each contact gets one grouped message, the transitions of one evaluation are written in one
transaction (counted by the store), notifications reach the dispatcher only once that
transaction has committed, and a restart neither re-pages nor forgets."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from alerts.dispatch import Notice
from alerts.notifiers.file import FileNotifier
from alerts.service import AlertService
from coldchain.clock import ManualClock
from coldchain.config.notify import FileNotifier as FileSettings
from coldchain.config.site import SiteConfig
from coldchain.statedb import StateConn
from hub.audit import AuditLog
from tests.alertkit import PROFILES, T0, r
from tests.alertscen import KEY, LEVEL1, PHONE, Hubs, site_doc

# every test on hub.db and again on PostgreSQL (tests/postgres.py)
pytestmark = pytest.mark.usefixtures("hub_engine")

ROOMS = 200
MAINS = [f"di-r{i}/mains" for i in range(1, ROOMS + 1)]


@pytest.fixture
async def hubs(tmp_path: Path) -> AsyncIterator[Hubs]:
    h = Hubs(tmp_path)
    yield h
    await h.aclose()


class Storm:
    """An alert service on the storm site, on ``hubs``' database, texting to a file."""

    def __init__(
        self, hubs: Hubs, clock: ManualClock, audit: Any = None, *, writer_thread: bool = False
    ) -> None:
        self.outbox = hubs.dir / "sms.jsonl"
        settings = FileSettings(id="file", type="file", path=str(self.outbox))
        doc = site_doc([settings.model_dump(mode="json")], rooms=ROOMS)
        self.clock = clock
        self.svc = AlertService(
            SiteConfig.model_validate(doc),
            PROFILES,
            db_path=hubs.db,
            audit=hubs.audit if audit is None else audit,
            notifiers=[FileNotifier(settings)],
            link_key=KEY,
            clock=clock,
            writer_thread=writer_thread,
        )
        self.svc.start()
        self.submitted: list[tuple[Notice, int]] = []  # and the notifications committed then
        submit = self.svc.dispatcher.submit
        reader = StateConn(hubs.db)  # another connection sees only what is committed

        def watch(notice: Notice) -> None:
            (committed,) = reader.execute(
                "SELECT count(*) FROM notifications WHERE id = ?", (notice.note_id,)
            ).fetchone()
            self.submitted.append((notice, int(committed)))
            submit(notice)

        self.svc.dispatcher.submit = watch  # type: ignore[method-assign]
        self._reader = reader

    def at(self, seconds: float) -> int:
        self.clock.set(T0 / 1000 + seconds)
        return self.clock.now_ms()

    def feed(self, value: float) -> int:
        """Every room's mains reading now; how many transactions it committed."""
        before = self.svc.store.commits
        now = self.clock.now_ms()
        self.svc.on_readings([r(s, now, value) for s in MAINS])
        return self.svc.store.commits - before

    def tick(self) -> int:
        before = self.svc.store.commits
        self.svc.tick()
        return self.svc.store.commits - before

    def texts(self) -> list[dict[str, Any]]:
        if not self.outbox.exists():
            return []
        lines = self.outbox.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]

    async def close(self) -> None:
        self._reader.close()
        await self.svc.aclose()


def per_alert(hubs: Hubs, action: str) -> Counter[str]:
    return Counter(a.object for a in hubs.trail(action))


async def test_a_storm_is_written_in_one_transaction_per_evaluation_and_paged_once(
    hubs: Hubs,
) -> None:
    storm = Storm(hubs, ManualClock(T0 / 1000))
    storm.at(0)
    storm.feed(1.0)
    storm.at(60)
    transitions = storm.svc.stats.transitions
    assert storm.feed(0.0) == 1  # 200 rooms cut: 200 pending alerts, one commit
    assert storm.svc.stats.transitions - transitions == ROOMS
    pending = per_alert(hubs, "alert.pending")
    assert len(pending) == ROOMS
    assert set(pending.values()) == {1}

    storm.at(90)  # the power-cut delay (30 s) runs out for all of them on one tick
    transitions = storm.svc.stats.transitions
    assert storm.tick() == 1  # 200 firing, their audit records and 600 notifications
    assert storm.svc.stats.transitions - transitions == ROOMS
    firing = per_alert(hubs, "alert.firing")
    assert set(firing) == set(pending)
    assert set(firing.values()) == {1}
    # handed to the dispatcher only once committed: another connection saw each row
    assert len(storm.submitted) == ROOMS * len(LEVEL1)
    assert all(committed == 1 for _, committed in storm.submitted)

    await storm.svc.dispatcher.flush()
    texts = storm.texts()
    assert sorted(t["to"] for t in texts) == sorted(PHONE[c] for c in LEVEL1)
    assert {t["kind"] for t in texts} == {"grouped"}
    assert all(f"{ROOMS}个告警" in t["text"] for t in texts)
    told = [a.after["to"] for a in hubs.trail("alert.notify")]  # one record per message
    assert sorted(told) == sorted(LEVEL1)
    await storm.close()

    # a restart: the 200 open alerts are taken up, nobody is paged again
    again = Storm(hubs, ManualClock(T0 / 1000 + 95))
    assert len(again.svc.open) == ROOMS
    again.tick()
    await again.svc.dispatcher.flush()
    assert len(again.texts()) == len(LEVEL1)
    assert again.submitted == []

    again.at(120)  # power back everywhere: 200 resolved in one commit, each audited once
    assert again.feed(1.0) == 1
    resolved = per_alert(hubs, "alert.resolved")
    assert set(resolved) == set(pending)
    assert set(resolved.values()) == {1}
    assert len(again.submitted) == ROOMS * len(LEVEL1)  # "back to normal", after the commit
    assert all(committed == 1 for _, committed in again.submitted)
    await again.svc.dispatcher.flush()
    back = [t for t in again.texts() if t["kind"] == "resolved"]
    assert sorted(t["to"] for t in back) == sorted(PHONE[c] for c in LEVEL1)
    assert per_alert(hubs, "alert.firing") == firing  # nothing fired twice
    await again.close()


async def test_a_storm_that_fails_to_commit_writes_nothing_and_pages_nobody(
    hubs: Hubs,
) -> None:
    storm = Storm(hubs, ManualClock(T0 / 1000))
    storm.feed(1.0)
    storm.at(90)

    def storm_then_fail() -> None:
        with storm.svc.store.transaction():
            storm.svc.on_readings([r(s, storm.clock.now_ms(), 0.0) for s in MAINS])
            storm.svc.tick()
            raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        storm_then_fail()
    assert storm.svc.store.query(limit=1000) == []
    assert hubs.trail("alert.pending") == []
    assert storm.svc.store.notifications() == []
    assert storm.submitted == []
    await storm.close()


async def test_an_audit_function_hears_each_transition_once_after_the_commit(
    hubs: Hubs,
) -> None:
    """A plain function as ``audit`` (a benchmark's recorder) cannot join the transaction:
    it is called once per record, after the commit."""
    heard: list[tuple[str, str, int]] = []
    reader = StateConn(hubs.db)

    def audit(*, action: str, obj: str, **_: Any) -> int:
        committed: Callable[[], int] = lambda: int(  # noqa: E731
            reader.execute("SELECT count(*) FROM alerts").fetchone()[0]
        )
        heard.append((action, obj, committed()))
        return 0

    storm = Storm(hubs, ManualClock(T0 / 1000), audit=audit)
    storm.feed(1.0)
    storm.at(60)
    assert storm.feed(0.0) == 1
    assert len(heard) == ROOMS
    assert len({obj for _, obj, _ in heard}) == ROOMS
    assert {(action, committed) for action, _, committed in heard} == {("alert.pending", ROOMS)}
    reader.close()
    await storm.close()


async def test_on_the_writer_thread_a_storm_commits_off_the_loop_and_then_pages(
    hubs: Hubs,
) -> None:
    """The hub's way: the evaluation returns before its commit, made on the store's writer
    thread; the notifications reach the dispatcher once it is durable."""
    storm = Storm(hubs, ManualClock(T0 / 1000), writer_thread=True)
    storm.feed(1.0)
    await storm.svc.store.settled()
    storm.at(60)
    storm.feed(0.0)
    await storm.svc.store.settled()
    storm.at(90)
    before = storm.svc.store.commits
    commits: list[int] = []  # the thread of each COMMIT
    conn = storm.svc.store._db
    commit = conn.commit

    def watched() -> None:  # watching the connection
        commits.append(threading.get_ident())
        commit()

    conn.commit = watched  # type: ignore[method-assign]
    storm.svc.tick()
    await storm.svc.store.settled()
    del conn.commit
    assert storm.svc.store.commits - before == 1
    assert len(commits) == 1
    assert commits[0] != threading.get_ident()  # not on the event loop's thread
    assert set(per_alert(hubs, "alert.pending").values()) == {1}
    firing = per_alert(hubs, "alert.firing")
    assert len(firing) == ROOMS
    assert set(firing.values()) == {1}
    assert len(storm.submitted) == ROOMS * len(LEVEL1)
    assert all(committed == 1 for _, committed in storm.submitted)
    await storm.svc.dispatcher.flush()
    assert sorted(t["to"] for t in storm.texts()) == sorted(PHONE[c] for c in LEVEL1)
    storm.at(120)
    storm.feed(1.0)
    await storm.close()  # waits for the commit in flight
    again = Storm(hubs, ManualClock(T0 / 1000 + 125))
    assert again.svc.open == {}
    assert set(per_alert(hubs, "alert.resolved").values()) == {1}
    assert len(per_alert(hubs, "alert.resolved")) == ROOMS
    await again.close()


def test_single_audit_records_still_commit_on_their_own(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "hub.db")
    log.record(actor="hub", action="config.load", obj="site-config", after={"sha256": "x"})
    other = AuditLog(tmp_path / "hub.db")
    last = other.last("config.load", "site-config")
    assert last is not None
    assert last.after == {"sha256": "x"}
    log.close()
    other.close()

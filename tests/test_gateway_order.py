"""The alert leader judges a gateway's batches in the gateway's order whichever ingest worker
stored each (hub/ordering.py): ahead of its turn a batch waits for the one before it, up to
the hold time; a late or resent batch is judged when it comes; a new outbox epoch starts a
new order. And, through the real evaluator, why: a storm's excursion whose batches come after
the recovery is still judged."""

from __future__ import annotations

from coldchain.alerting.views import SeriesView
from coldchain.protocol.stored import Stored
from coldchain.reading import Reading, SeriesId
from hub.ordering import GatewayOrder

S = SeriesId("site", "gw-1", "probe", "temperature")


def batch(seq: int, *values: float, gateway: str = "gw-1", epoch: str = "e1") -> Stored:
    return Stored(
        "hub", gateway, epoch, seq, [Reading(S, seq * 1000 + i, v) for i, v in enumerate(values)]
    )


class Judged:
    def __init__(self) -> None:
        self.seqs: list[int] = []

    def __call__(self, readings: list[Reading]) -> None:
        self.seqs += sorted({r.ts_ms // 1000 for r in readings})


def test_a_batch_ahead_of_its_turn_waits_for_the_one_before() -> None:
    judged = Judged()
    order = GatewayOrder(judged, hold_ms=30_000)
    order.add(batch(5, 1.0), 0)  # the first seen starts the order
    order.add(batch(7, 3.0), 10)  # the other worker has 6
    order.add(batch(8, 4.0), 20)
    assert judged.seqs == [5]
    assert order.waiting() == 2
    order.add(batch(6, 2.0), 5_000)
    assert judged.seqs == [5, 6, 7, 8]
    assert order.waiting() == 0
    assert (order.stats.in_order, order.stats.held, order.stats.gaps) == (2, 2, 0)


def test_a_missing_batch_is_given_up_after_the_hold_and_judged_late_if_it_comes() -> None:
    judged = Judged()
    order = GatewayOrder(judged, hold_ms=30_000)
    order.add(batch(1, 1.0), 0)
    order.add(batch(3, 3.0), 1_000)  # 2 dropped by the gateway, or far behind
    order.expire(30_999)
    assert judged.seqs == [1]
    order.expire(31_000)  # held for the hold time: judged from 3 on
    assert judged.seqs == [1, 3]
    assert order.stats.gaps == 1
    order.add(batch(2, 2.0), 40_000)  # it came after all: judged, late
    order.add(batch(3, 3.0), 41_000)  # a resend of one judged: judged again (its readings skip)
    assert judged.seqs == [1, 3, 2, 3]
    assert order.stats.late == 2


def test_gateways_are_ordered_apart_and_a_new_epoch_starts_a_new_order() -> None:
    judged = Judged()
    order = GatewayOrder(judged)
    order.add(batch(1, 1.0), 0)
    order.add(batch(9, 9.0, gateway="gw-2"), 0)  # another gateway: its own order
    order.add(batch(3, 3.0), 0)  # held: 2 missing
    order.add(batch(4, 4.0, epoch="e2"), 0)  # the outbox made anew: 3 judged, the new order
    assert judged.seqs == [1, 9, 3, 4]
    assert order.waiting() == 0


def test_a_batch_sent_in_several_messages_is_judged_whole() -> None:
    judged = Judged()
    order = GatewayOrder(judged)
    order.add(batch(1, 1.0), 0)
    order.add(batch(3, 3.0), 0)
    order.add(batch(3, 3.5), 0)  # the second message of batch 3, held with the first
    order.add(batch(2, 2.0), 0)
    assert judged.seqs == [1, 2, 3]


def test_an_excursion_stored_by_a_lagging_worker_is_still_seen_by_the_evaluator() -> None:
    """Batch 2 (above the limit) comes after batch 3 (recovered), as from a worker that lags:
    fed as they come, the evaluator's series view skips it (older than what it knows); in
    the gateway's order it sees the excursion."""
    arrivals = [batch(1, 2.0), batch(3, 2.5), batch(2, 6.5)]

    def seen(feed_in_order: bool) -> list[float]:
        view, values = SeriesView("room", "air"), list[float]()

        def judge(readings: list[Reading]) -> None:
            values.extend(r.value for r in readings if view.update(r) and r.value is not None)

        if feed_in_order:
            order = GatewayOrder(judge)
            for b in arrivals:
                order.add(b, 0)
        else:
            for b in arrivals:
                judge(b.readings)
        return values

    assert 6.5 not in seen(feed_in_order=False)
    assert seen(feed_in_order=True) == [2.0, 6.5, 2.5]

"""Protocol v1 and v2 side by side, end to end: an agent left on v1 (``uplink.protocol: 1``)
and one on v2 stream to the same real hub; the hub learns only the v2 agent's series table;
when the hub loses its tables (as a restart does), it asks the v2 agent for its batches again
with the table, and the readings keep coming."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.service import Hub
from tests.agentkit import agents, all_series, county
from tests.hubkit import running_hub_service
from tests.services import Broker, until

V1, V2 = "gw-dongtang", "gw-shuangxi"


async def newest_ms(hub: Hub, gateway: str) -> int:
    latest = await hub.store.latest()
    return max((r.ts_ms for s, r in latest.items() if s.gateway == gateway), default=0)


def tables_of(hub: Hub) -> set[str]:
    return {gw for gw, _ in hub.ingest.tables._tables}


@pytest.mark.slow
async def test_a_v1_and_a_v2_agent_stream_to_one_hub_that_asks_again_for_a_lost_table(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with (
        county(tmp_path, mosquitto, poll="500ms") as c,
        running_hub_service(c.cfg, c.profiles, tmp_path / "hub", mosquitto.url) as hub,
        agents(c, tmp_path, only=[V1, V2]) as running,
    ):
        old = next(a for a in running if a.gw.id == V1)
        old.uplink.uplink = old.uplink.uplink.model_copy(update={"protocol": 1})

        async def both_stored() -> bool:
            return await newest_ms(hub, V1) > 0 and await newest_ms(hub, V2) > 0

        await until(both_stored, "readings of both agents at the hub", 30)
        new = next(a for a in running if a.gw.id == V2).uplink
        every = len(all_series(c.cfg, c.profiles, V2))

        def table_complete() -> bool:  # every series sent once: the table grows no more
            return len(new._encoder._entries) == every and new._hub_table == new._encoder.digest

        await until(table_complete, "the hub holding the whole v2 table", 30)
        assert tables_of(hub) == {V2}  # the v1 agent sent its series with every batch
        assert not hub.ingest.stats.rejected

        acked, old_acked = new.stats.readings_acked, old.uplink.stats.readings_acked
        hub.ingest.tables.forget()  # what a restarted hub knows of the tables

        def both_going_on() -> bool:
            return (
                new.stats.readings_acked > acked + 20
                and old.uplink.stats.readings_acked > old_acked + 20
                and tables_of(hub) == {V2}
            )

        await until(both_going_on, "both agents' readings stored after the loss", 30)
        assert hub.ingest.stats.rejected["unknown_table"] >= 1  # asked again, with it
        assert set(hub.ingest.stats.rejected) == {"unknown_table"}
        assert new.stats.batches_resent == 0  # at once, not after the ack timeout

"""Size limits of the wire protocol, shared by the agent (which never exceeds them) and the
hub (which refuses anything beyond them before decoding it).

Each bound sits well above what a correctly configured agent sends, so a legal message is
never refused, and low enough that a hostile or broken sender cannot make the hub allocate
more than a few megabytes per message:

* A telemetry batch holds at most ``MAX_BATCH_READINGS`` readings. The agent's
  ``agent.batch_size`` is at most ``AGENT_MAX_BATCH_SIZE`` (``coldchain/config/site.py``;
  ``tests/test_payload_properties.py`` keeps the two in step), half the hub's bound.
* Its series table holds at most ``MAX_BATCH_SERIES`` entries (an agent sends only the
  series its readings use, so no more entries than readings, and a gateway reads far fewer
  points than this).
* Device, point, site and gateway ids on the wire are at most ``MAX_ID_CHARS`` characters;
  a reading's reason at most ``MAX_REASON_BYTES`` bytes of UTF-8 (the agent's encoder
  shortens longer reasons, so its batches always fit).
* ``MAX_BATCH_BYTES`` is the encoded size of the largest batch those bounds allow: a larger
  payload cannot be a legal batch and is refused before it is decoded.
* Status and health are small JSON documents from our own agent: ``MAX_STATUS_BYTES``,
  ``MAX_HEALTH_BYTES`` and ``MAX_JSON_DEPTH`` bound them; edge notices ``MAX_NOTICES_BYTES``.
"""

from __future__ import annotations

AGENT_MAX_BATCH_SIZE = 10_000
MAX_BATCH_READINGS = 20_000
MAX_BATCH_SERIES = 10_000
MAX_ID_CHARS = 64
MAX_EPOCH_CHARS = 64
MAX_REASON_BYTES = 200

# MessagePack sizes of the worst case of each part (docs/protocol.md):
_HEADER_BYTES = 1024  # the map, its keys, v, gw, site, epoch and seq, with room to spare
# [device, point, calibration]: array header 1, two str8 ids (2 + 64 each), a float64 9
_SERIES_ENTRY_BYTES = 1 + 2 * (2 + MAX_ID_CHARS) + 9
# [index, ts, value, quality, reason]: array header 1, uint16 index 3, uint64 ts 9,
# float64 9, fixstr "b" 2, str8 reason 2 + 200
_ROW_BYTES = 1 + 3 + 9 + 9 + 2 + 2 + MAX_REASON_BYTES
MAX_BATCH_BYTES = (
    _HEADER_BYTES + MAX_BATCH_SERIES * _SERIES_ENTRY_BYTES + MAX_BATCH_READINGS * _ROW_BYTES
)
"""Encoded size of the largest legal batch (about 5.7 MiB)."""

MAX_STATUS_BYTES = 4 * 1024
MAX_HEALTH_BYTES = 512 * 1024
MAX_HEALTH_DEVICES = 2_000
MAX_JSON_DEPTH = 8
MAX_NOTICES_BYTES = 4 * 1024 * 1024
"""An alerts message: at most 1,000 notices (``edge.MAX_NOTICES``) of a few hundred bytes
each plus their texts; far above what an agent sends (a few notices per message)."""

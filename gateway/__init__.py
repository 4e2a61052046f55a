"""The centre's side of the gateways.

``ingest``: telemetry from the broker, decoded with bounded size and checked (a known
gateway, known series, plausible values and times), written to the store, then acknowledged
to the gateway end to end, so the agent deletes only what the store holds. ``registry``: each
gateway's state (online, offline, unknown) from its retained status and last will, its
latest health report, and when it was last heard, kept in the hub database. ``timesync``:
each gateway's clock offset, measured by a timestamped exchange over MQTT.

Gateway identities on the broker (``dynsec``, ``provision``, ``keys``, ``bundle``), the
centre's broker config and CA (``broker``, ``ca``), commissioning commands to a gateway's
agent (``remote``) and their command lines are here too. Config distribution is not here yet
(docs/architecture.md).
"""

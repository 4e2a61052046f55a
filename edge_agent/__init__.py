"""The edge agent: the process on each Raspberry Pi gateway.

Plans and polls Modbus (RTU on RS-485, and TCP), reads local MQTT sensors, decodes with the
device profiles, keeps every reading in an on-disk buffer until the hub acknowledges it, and
streams batches to the centre over MQTT. Installs alone on a Pi: it imports only ``coldchain``.
"""

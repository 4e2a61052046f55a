"""The wire protocol between gateways and the hub: versioned MQTT topics under one prefix
(``topics``) and the payloads on them (``messages``). Documented in docs/protocol.md."""

VERSION = 1

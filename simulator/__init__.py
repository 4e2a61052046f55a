"""The virtual site: rooms with thermal behaviour, controllers and transmitters served as
real Modbus slaves (TCP, and RTU on a pseudo-terminal per RS-485 bus), MQTT sensors in their
vendors' payload formats, the sorting line's PLC, fault injection and an accelerated clock.

Used by ``coldchain demo``, the tests and the benchmarks; see docs/simulator.md. Pure parts:
``room_params``/``thermal``/``sorting`` (physics), ``signals`` (point -> quantity), ``device``
and ``image`` (values and registers), ``pdu`` (Modbus PDUs), ``faults``, ``journal``. I/O:
``rtu`` (pty), ``tcp``, ``mqtt``, ``control`` (HTTP API), composed by ``runtime``; ``cli`` is
``coldchain simulate`` and ``ctl`` the control API's command line client.
"""

"""coldchain core: what every part shares.

The domain model (site, room, gateway, bus, device, point, reading), config loading and
validation with file:line errors, device profiles and the register codec, the wire protocol,
the store interface, and the ``coldchain`` command line. It imports none of the other
top-level packages (``edge_agent``, ``gateway``, ``alerts``, ``dashboards``, ``simulator``).
"""

__version__ = "0.1.0"

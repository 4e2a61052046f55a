"""coldchain core: what every part shares, importing none of the other packages.

The domain model (``reading``: series ids, readings, quality), the site config and its
loader with file:line errors (``config``), device profiles and the register codec
(``profiles``), the wire protocol (``protocol``), the store interface and its two backend
families (``store``), the pure alerting core shared by the hub and the agent's fallback
(``alerting``), SMS encoding and the GSM modem driver (``sms``), the clock (``clock``),
bounded request parameters (``params``), and the ``coldchain`` command (``cli``), whose
subcommands it imports lazily from the packages that implement them. It installs alone on a
Pi; tests/test_imports.py holds it to that.
"""

__version__ = "0.1.0"

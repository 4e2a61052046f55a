"""Site config: the pydantic models (``site``), the YAML loader that reports every error with
its line (``loader``, ``yamldoc``, ``errors``), cross-reference checks (``checks``)."""

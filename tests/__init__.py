"""The test suite (a package, so helpers import as ``tests.services`` and mypy maps each file
to one module name)."""

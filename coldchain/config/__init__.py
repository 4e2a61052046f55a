"""Site config: the pydantic models (``site``), the bounded YAML reader that reports every
error with its line in plain words (``yamlread``, ``yamlcompose``, ``yamlsyntax``,
``yamldoc``), the loader that collects every error (``loader``, ``errors``), cross-reference
checks (``checks``) and the rules' coverage warnings (``coverage``)."""

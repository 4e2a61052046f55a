"""Loading a site config: every error of the file, each with file:line, key path, the bad
value and the fix. Shapes are checked first (pydantic); cross-references after."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from coldchain.config.checks import check
from coldchain.config.errors import (
    ConfigError,
    InvalidConfigError,
    duplicate_key_errors,
    from_validation_error,
)
from coldchain.config.site import SiteConfig
from coldchain.config.yamldoc import YamlDoc, YamlSyntaxError
from coldchain.config.yamlread import gc_paused, load_yaml
from coldchain.profiles.registry import ProfileRegistry


@dataclass
class CheckResult:
    """What checking a file found."""

    config: SiteConfig | None
    errors: list[ConfigError] = field(default_factory=list)
    warnings: list[ConfigError] = field(default_factory=list)
    cross_checked: bool = False


def check_site_file(
    path: str | Path,
    profiles: ProfileRegistry | None = None,
    text: str | None = None,
    *,
    advice: bool = True,
) -> CheckResult:
    """Validate a site config file and return the config (if valid) with all findings
    (``advice=False``: without the checks that can only warn, :func:`checks.check`).

    Whatever the file holds, the result is a config or located errors: reading is bounded
    (:mod:`coldchain.config.yamlread`), and the time taken grows linearly with its size.
    """
    try:
        doc = load_yaml(path, text)
    except YamlSyntaxError as exc:
        return CheckResult(None, [ConfigError(exc.file, exc.mark, (), exc.problem, exc.fix)])
    with gc_paused():  # the config's objects are many and acyclic: see gc_paused
        return _check_doc(doc, profiles, advice=advice)


def _check_doc(doc: YamlDoc, profiles: ProfileRegistry | None, *, advice: bool) -> CheckResult:
    errors = duplicate_key_errors(doc)
    try:
        cfg = SiteConfig.model_validate(doc.data)
    except ValidationError as exc:
        errors += from_validation_error(exc, doc, SiteConfig)
        errors.sort(key=lambda e: (e.mark.line, e.mark.col))
        return CheckResult(None, errors)
    registry = profiles if profiles is not None else ProfileRegistry.load()
    warnings: list[ConfigError] = []
    for f in check(cfg, registry, advice=advice):
        err = ConfigError(doc.file, doc.mark(f.path), f.path, f.message, f.fix, f.value)
        (warnings if f.warning else errors).append(err)
    errors.sort(key=lambda e: (e.mark.line, e.mark.col))
    warnings.sort(key=lambda e: (e.mark.line, e.mark.col))
    return CheckResult(None if errors else cfg, errors, warnings, cross_checked=True)


def load_site_config(path: str | Path, profiles: ProfileRegistry | None = None) -> SiteConfig:
    """The valid config in ``path``, to run it (warnings are for ``config check``: the checks
    that can only warn are skipped); raise :class:`InvalidConfigError` with every error."""
    result = check_site_file(path, profiles, advice=False)
    if result.config is None:
        raise InvalidConfigError(result.errors)
    return result.config

"""Loading and looking up device profiles (``firmware_configs/profiles/*.yaml``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from coldchain.config.errors import (
    ConfigError,
    InvalidConfigError,
    duplicate_key_errors,
    from_validation_error,
)
from coldchain.config.yamldoc import Mark, YamlSyntaxError
from coldchain.config.yamlread import load_yaml
from coldchain.profiles.schema import ModbusProfile, MqttProfile, Profile

_ADAPTER: TypeAdapter[ModbusProfile | MqttProfile] = TypeAdapter(Profile)


def default_profiles_dir() -> Path:
    """The profiles shipped with coldchain (a data package, not code)."""
    import firmware_configs

    return firmware_configs.PROFILES_DIR


def check_profile_file(path: Path) -> tuple[ModbusProfile | MqttProfile | None, list[ConfigError]]:
    """Parse and validate one profile file; return it (or None) and every error found."""
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        return None, [ConfigError(exc.file, exc.mark, (), exc.problem, exc.fix)]
    errors = duplicate_key_errors(doc)
    try:
        profile = _ADAPTER.validate_python(doc.data)
    except ValidationError as exc:
        return None, errors + from_validation_error(exc, doc, Profile)
    if profile.id != path.stem:
        errors.append(
            ConfigError(
                doc.file,
                doc.mark(("id",)),
                ("id",),
                f"profile id {profile.id!r} differs from the file name",
                f"rename the file to {profile.id}.yaml or set 'id: {path.stem}'",
                profile.id,
            )
        )
    return (None if errors else profile), errors


class ProfileRegistry:
    """Profiles by id."""

    def __init__(self, profiles: Iterable[ModbusProfile | MqttProfile]) -> None:
        self._by_id = {p.id: p for p in profiles}

    @classmethod
    def load(cls, *dirs: Path) -> ProfileRegistry:
        """Load every ``*.yaml`` in ``dirs`` (default: the shipped profiles); raise
        :class:`InvalidConfigError` listing every error of every file."""
        found: list[ModbusProfile | MqttProfile] = []
        errors: list[ConfigError] = []
        seen: dict[str, Path] = {}
        for d in dirs or (default_profiles_dir(),):
            for path in sorted(Path(d).glob("*.yaml")):
                profile, errs = check_profile_file(path)
                errors += errs
                if profile is None:
                    continue
                if profile.id in seen:
                    errors.append(
                        ConfigError(
                            str(path),
                            Mark(1, 1),
                            ("id",),
                            f"profile {profile.id!r} is also defined in {seen[profile.id]}",
                            "give one of them another id",
                        )
                    )
                seen[profile.id] = path
                found.append(profile)
        if errors:
            raise InvalidConfigError(errors)
        return cls(found)

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._by_id

    def __iter__(self) -> Iterator[ModbusProfile | MqttProfile]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def suggest(self, profile_id: str) -> str | None:
        import difflib  # only for a config with a mistake in it: not in a running agent's memory

        close = difflib.get_close_matches(profile_id, self._by_id, n=1, cutoff=0.5)
        return close[0] if close else None

    def get(self, profile_id: str) -> ModbusProfile | MqttProfile:
        try:
            return self._by_id[profile_id]
        except KeyError:
            hint = self.suggest(profile_id)
            more = f"; did you mean {hint!r}?" if hint else ""
            raise KeyError(f"no device profile {profile_id!r}{more}") from None

"""Config errors that say where (file:line, key path), what (the bad value) and the fix.

Pydantic's validation errors are translated here: their location is mapped back to the YAML
file through :class:`~coldchain.config.yamldoc.YamlDoc`, discriminator tags are dropped from
the path, and unknown keys get a close-match suggestion from the model at that place.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from coldchain.config.yamldoc import Mark, PathT, YamlDoc

NO_VALUE: Any = object()
"""Marks an error that has no single bad value to show."""
_MISSING = NO_VALUE


@dataclass(frozen=True, slots=True)
class ConfigError:
    """One problem in one file."""

    file: str
    mark: Mark
    path: PathT
    message: str
    fix: str | None = None
    value: Any = _MISSING

    def format(self) -> str:
        where = f"{self.file}:{self.mark.line}:{self.mark.col}"
        path = format_path(self.path)
        lines = [f"{where}: {path}: {self.message}" if path else f"{where}: {self.message}"]
        if self.value is not _MISSING:
            lines.append(f"    value: {_show(self.value)}")
        if self.fix:
            lines.append(f"    fix: {self.fix}")
        return "\n".join(lines)


class InvalidConfigError(ValueError):
    """A config or profile file with one or more errors."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        n = len(errors)
        super().__init__(
            f"{n} error{'s' if n != 1 else ''}:\n" + "\n".join(e.format() for e in errors)
        )


def format_path(path: PathT) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def split_fix(message: str) -> tuple[str, str | None]:
    """Our validators write '<problem>; <fix>'; pydantic prefixes 'Value error, '."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    problem, sep, fix = message.partition("; ")
    return problem, (fix if sep else None)


# --- walking a model type along a pydantic error location -------------------------------


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _tagged(members: list[Any]) -> dict[str, Any]:
    """Discriminated union members by their tag value (the Literal default of 'type' etc.)."""
    out: dict[str, Any] = {}
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel):
            for f in m.model_fields.values():
                args = typing.get_args(_unwrap(f.annotation))
                if typing.get_origin(_unwrap(f.annotation)) is typing.Literal and len(args) == 1:
                    out[str(args[0])] = m
    return out


def _field_by_key(model: type[BaseModel], key: str) -> Any:
    for name, f in model.model_fields.items():
        if key in (f.alias, name):
            return f.annotation
    return _MISSING


def resolve(root: Any, loc: tuple[int | str, ...]) -> tuple[PathT, Any]:
    """The data path of ``loc`` (tags dropped) and the type found at its end (or _MISSING)."""
    tp: Any = _unwrap(root)
    path: list[str | int] = []
    for part in loc:
        members = _union_members(tp)
        if len(members) > 1:
            tags = _tagged(members)
            if isinstance(part, str) and part in tags:
                tp = tags[part]
                continue
            tp = members[0]
        else:
            tp = members[0]
        path.append(part)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = _unwrap(_field_by_key(tp, str(part))) if isinstance(part, str) else _MISSING
        elif origin in (list, tuple, set, frozenset):
            args = typing.get_args(tp)
            tp = _unwrap(args[0]) if args else _MISSING
        elif origin is dict:
            tp = _unwrap(typing.get_args(tp)[1])
        else:
            tp = _MISSING
    return tuple(path), tp


def allowed_keys(tp: Any) -> list[str]:
    out: list[str] = []
    for m in _union_members(tp):
        if isinstance(m, type) and issubclass(m, BaseModel):
            out += [(f.alias or n) for n, f in m.model_fields.items()]
    return out


def _description(model: Any, key: str) -> str | None:
    for m in _union_members(model):
        if isinstance(m, type) and issubclass(m, BaseModel):
            for n, f in m.model_fields.items():
                if (f.alias or n) == key:
                    return f.description
    return None


Explained = tuple[str, str | None]

_SIMPLE: dict[str, Explained] = {
    "int_parsing": ("not a whole number", "write an integer, e.g. 9600"),
    "int_type": ("not a whole number", "write an integer, e.g. 9600"),
    "int_from_float": ("not a whole number", "write an integer, e.g. 9600"),
    "float_parsing": ("not a number", "write a number, e.g. -18.5"),
    "float_type": ("not a number", "write a number, e.g. -18.5"),
    "bool_parsing": ("not true or false", "write true or false"),
    "bool_type": ("not true or false", "write true or false"),
    "list_type": ("expected a list", "write the items as a YAML list ('- item' on each line)"),
    "model_type": ("expected a mapping", "write 'key: value' lines here"),
    "model_attributes_type": ("expected a mapping", "write 'key: value' lines here"),
    "dict_type": ("expected a mapping", "write 'key: value' lines here"),
    "string_type": ("expected text", "quote it, e.g. 'abc'"),
}
_BOUNDS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than")


def _unknown_key(root: Any, loc: tuple[int | str, ...]) -> Explained:
    key = str(loc[-1])
    _, parent = resolve(root, loc[:-1])
    keys = allowed_keys(parent)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}", f"did you mean {close[0]!r}?"
    return f"unknown key {key!r}", f"remove it; allowed keys here: {', '.join(keys)}"


def _missing_key(root: Any, loc: tuple[int | str, ...]) -> Explained:
    key = str(loc[-1])
    _, parent = resolve(root, loc[:-1])
    desc = _description(parent, key)
    return f"missing required key {key!r}", f"add '{key}: ...'" + (f" ({desc})" if desc else "")


def _bad_tag(ctx: dict[str, Any]) -> Explained:
    tag, expected = ctx.get("tag"), str(ctx.get("expected_tags", ""))
    options = [t.strip().strip("'") for t in expected.split(",")]
    close = difflib.get_close_matches(str(tag), options, n=1, cutoff=0.5)
    fix = f"did you mean {close[0]!r}?" if close else f"use one of {expected}"
    return f"{_discriminator(ctx)} {tag!r} is not known", fix


def _discriminator(ctx: dict[str, Any]) -> str:
    return str(ctx.get("discriminator", "type")).strip("'")


def _not_allowed(ctx: dict[str, Any], value: Any) -> Explained:
    expected = str(ctx.get("expected", ""))
    options = [o.strip(" '") for o in expected.replace(" or ", ", ").split(",")]
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    if close:
        return "not an allowed value", f"did you mean {close[0]!r}? (one of {expected})"
    return "not an allowed value", f"use one of {expected}"


def _bad_form(ctx: dict[str, Any]) -> Explained:
    pattern = str(ctx.get("pattern", ""))
    if pattern.startswith(("^[a-z0-9]", "^[a-z]")):
        return "not a valid id", "use lower-case letters, digits, '-' and '_' (e.g. 'cold-room-1')"
    return "does not have the expected form", f"match the pattern {pattern}"


def _explain(err: ErrorDetails, root: Any, loc: tuple[int | str, ...]) -> Explained:
    """A message and a fix for one pydantic error."""
    kind, msg = err["type"], err["msg"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in _BOUNDS:
        return msg.replace("Input should be", "must be"), None
    match kind:
        case "extra_forbidden":
            return _unknown_key(root, loc)
        case "missing":
            return _missing_key(root, loc)
        case "union_tag_invalid":
            return _bad_tag(ctx)
        case "union_tag_not_found":
            disc = _discriminator(ctx)
            return f"missing {disc!r}", f"add '{disc}: ...' to say which kind this is"
        case "literal_error" | "enum":
            return _not_allowed(ctx, err.get("input"))
        case "string_pattern_mismatch":
            return _bad_form(ctx)
        case "too_short":
            return msg.replace("List should have", "needs"), "add at least one item"
    return split_fix(msg)


def from_validation_error(exc: ValidationError, doc: YamlDoc, root: Any) -> list[ConfigError]:
    """Translate pydantic's errors to :class:`ConfigError` s positioned in ``doc``."""
    out: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, _ = resolve(root, loc)
        if err["type"] == "union_tag_invalid":
            path = (*path, _discriminator(dict(err.get("ctx") or {})))
        message, fix = _explain(err, root, loc)
        value: Any = _MISSING if err["type"] == "missing" else err.get("input", _MISSING)
        if err["type"] == "union_tag_invalid":
            value = (err.get("ctx") or {}).get("tag", _MISSING)
        if isinstance(value, dict | list) and err["type"] not in ("list_type", "dict_type"):
            value = _MISSING  # a whole block is not worth echoing
        out.append(ConfigError(doc.file, doc.mark(path), path, message, fix, value))
    return out


def duplicate_key_errors(doc: YamlDoc) -> list[ConfigError]:
    return [
        ConfigError(
            doc.file,
            second,
            path,
            f"key {path[-1]!r} appears twice (first at line {first.line})",
            "keep one; YAML would silently use the last",
        )
        for path, first, second in doc.duplicates
    ]

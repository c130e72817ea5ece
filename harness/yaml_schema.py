"""Reading the harness's YAML files into frozen, validated objects, with one error style for all.

Submission manifests, the zoo registry, protocols and training configs are all read here, so a
user meets the same one-line message whichever file is wrong: ``<file>: <field>: <problem>``, e.g.
``configs/x.yaml: optim.iteration: unknown key (did you mean 'iterations'?)``.

Two readers, for two kinds of file:

- :class:`YamlMapping` reads a mapping field by field, for files whose fields need their own
  checks and conversions (manifests, the registry);
- :func:`from_mapping` builds a frozen dataclass from a mapping by the dataclass's type hints,
  for files that are exactly a tree of dataclasses (protocols, training configs).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import yaml

from harness.errors import HarnessError

_T = TypeVar("_T")


def read_yaml(path: Path) -> object:
    """``yaml.safe_load`` of a file, with read and syntax errors as one-line HarnessErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise HarnessError(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise HarnessError(f"{path}: {where}invalid YAML: {problem}") from error


def unknown_key_message(key: object, known: Iterable[str]) -> str:
    """``unknown key`` with the closest known key, or the list of known keys when none is close."""
    known = list(known)
    close = difflib.get_close_matches(str(key), known, n=1)
    return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(known)})")


class YamlMapping:
    """One mapping of a YAML file, with its keys checked at once and values read with type checks.

    ``where`` is the mapping's own field name (``""`` at the top level, where ``label`` names it in
    the "must be a mapping" error); errors name ``<source>: <where>.<key>``.
    """

    def __init__(
        self,
        source: str | Path,
        where: str,
        data: object,
        *,
        required: Iterable[str],
        optional: Iterable[str] = (),
        label: str = "top level",
    ) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail(where or label, f"must be a mapping, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        required = list(required)
        allowed = [*required, *optional]
        for key in data:
            if key not in allowed:
                self.fail(self.name(key), unknown_key_message(key, allowed))
        for key in required:
            if data.get(key) is None:
                self.fail(self.name(key), "missing")

    def name(self, key: str) -> str:
        """The dotted field name of ``key`` in this mapping."""
        return f"{self.where}.{key}" if self.where else str(key)

    def fail(self, field_name: str, message: str) -> NoReturn:
        raise HarnessError(f"{self.source}: {field_name}: {message}")

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, *, kind_name: str | None = None
    ) -> Any:
        """The value of ``key`` if it is a ``kind`` (``default`` when absent or null).

        A boolean never passes as a number (YAML's ``yes`` is not 1).
        """
        value = self.data.get(key)
        if value is None:
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = kind_name or " or ".join(k.__name__ for k in kinds)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(self.name(key), f"must be {expected}, got {value!r}")
        if not isinstance(value, kinds):
            self.fail(self.name(key), f"must be {expected}, got {type(value).__name__} {value!r}")
        return value

    def text(self, key: str) -> str | None:
        """A non-empty string, or None when absent."""
        value = self.get(key, str, kind_name="a string")
        if value is not None and not value.strip():
            self.fail(self.name(key), "must not be empty")
        return value


def from_mapping(cls: type[_T], raw: Any, *, source: str, prefix: str = "") -> _T:
    """Build dataclass ``cls`` from mapping ``raw``, checking every value against the type hints.

    Unknown keys are errors; fields without a default are required. Nested dataclasses, ``X | None``,
    ``Literal[...]``, ``tuple[X, ...]``, fixed-length tuples, ``bool``, ``int``, ``float`` and
    non-empty ``str`` are understood.
    """
    if not isinstance(raw, dict):
        where = prefix.rstrip(".") or "top level"
        raise HarnessError(f"{source}: {where}: must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    dataclass_fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = [f.name for f in dataclass_fields]
    for key in raw:
        if key not in known:
            raise HarnessError(f"{source}: {prefix}{key}: {unknown_key_message(key, known)}")
    values = {}
    for f in dataclass_fields:
        if f.name in raw:
            values[f.name] = _convert(hints[f.name], raw[f.name], source, f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise HarnessError(f"{source}: {prefix}{f.name}: missing")
    return cls(**values)


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    """Check ``value`` against the annotation ``hint`` and return it in the annotated type."""
    origin = typing.get_origin(hint)

    def fail(problem: str) -> NoReturn:
        raise HarnessError(f"{source}: {key}: {problem}")

    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, source=source, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _convert(option, value, source, key)
            except HarnessError as error:
                errors.append(str(error).removeprefix(f"{source}: {key}: "))
        fail(" or ".join(errors) if errors else "must not be null")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            fail(f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            fail(f"must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            fail(f"must be a list of {len(args)} values, got {len(value)}")
        return tuple(
            _convert(a, item, source, f"{key}[{i}]")
            for i, (a, item) in enumerate(zip(args, value, strict=True))
        )
    if hint is bool:
        if not isinstance(value, bool):
            fail(f"must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"must be an integer, got {value!r}")
        return value
    if hint is float:
        # YAML 1.1 reads 5e-4 (no dot) as a string, so numeric strings are accepted for numbers.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            fail(f"must be a non-empty string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {hint!r} for {key}")  # a bug in the dataclass, not the file

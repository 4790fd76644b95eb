"""Validated, frozen, keyword-only configs with TOML in/out.

Every config is a frozen ``dataclass(kw_only=True)`` subclassing :class:`Config`.
Fields are declared with :func:`param`, which carries a one-line doc and the
constraints checked at construction. A bad value raises :class:`ConfigError`
naming the field, the value and what was expected.

Example:
    >>> @dataclasses.dataclass(frozen=True, kw_only=True)
    ... class Demo(Config):
    ...     beta: float = param(0.98, "Discount factor.", gt=0.0, lt=1.0)
    >>> Demo().beta
    0.98
    >>> Demo.from_overrides({"beta": "0.9"}).beta
    0.9
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from abm_markets.errors import ConfigError, suggest

_MISSING = dataclasses.MISSING


def param(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """Declare a config field with a doc string and constraints.

    Args:
        default: Default value (lists are stored as tuples so configs stay hashable).
        doc: One-line description shown by ``abm-markets list`` and in errors.
        ge, gt, le, lt: Numeric bounds (also applied element-wise to tuples).
        choices: The admissible values.
    """
    if isinstance(default, list):
        default = tuple(default)
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


def _base_type(tp: Any) -> tuple[type, ...]:
    """Map a resolved annotation to the runtime types accepted for it."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out: tuple[type, ...] = ()
        for a in typing.get_args(tp):
            out += _base_type(a)
        return out
    if origin is tuple:
        return (tuple,)
    if origin is typing.Literal:
        return tuple({type(a) for a in typing.get_args(tp)})
    if tp is type(None):
        return (type(None),)
    if isinstance(tp, type):
        return (tp,)
    return (object,)


def _elem_type(tp: Any) -> type | None:
    """Element type of ``tuple[float, ...]``-style annotations."""
    for t in (tp, *typing.get_args(tp)):
        if typing.get_origin(t) is tuple:
            args = [a for a in typing.get_args(t) if a is not Ellipsis]
            return args[0] if args else None
    return None


def _describe(meta: Mapping[str, Any], types_: tuple[type, ...]) -> str:
    parts = []
    if meta.get("choices") is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    names = "/".join(t.__name__ for t in types_ if t is not type(None))
    parts.append(names or "a value")
    for key, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if meta.get(key) is not None:
            parts.append(f"{sym} {meta[key]}")
    return " ".join(parts)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Base class: validation, overrides from strings, TOML-ready dicts and hashing."""

    _section: ClassVar[str] = "config"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            self._check_field(f, hints[f.name], value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise :class:`ConfigError`."""

    # ------------------------------------------------------------------ checks
    def _fail(self, name: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"{type(self).__name__}.{name} = {value!r} is invalid; expected {expected}")

    def _check_field(self, f: dataclasses.Field[Any], tp: Any, value: Any) -> None:
        meta = f.metadata
        accepted = _base_type(tp)
        ok_type = isinstance(value, accepted) if object not in accepted else True
        if float in accepted and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(self, f.name, float(value))
            value = float(value)
            ok_type = True
        if isinstance(value, bool) and bool not in accepted:
            ok_type = False
        if not ok_type:
            raise self._fail(f.name, value, _describe(meta, accepted))
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise self._fail(f.name, value, _describe(meta, accepted) + suggest(str(value), map(str, meta["choices"])))
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if isinstance(v, float) and not math.isfinite(v):
                    raise self._fail(f.name, value, "a finite number")
                for key, bad in (
                    ("ge", lambda a, b: a < b),
                    ("gt", lambda a, b: a <= b),
                    ("le", lambda a, b: a > b),
                    ("lt", lambda a, b: a >= b),
                ):
                    bound = meta.get(key)
                    if bound is not None and bad(v, bound):
                        raise self._fail(f.name, value, _describe(meta, accepted))

    # ------------------------------------------------------------ constructors
    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> one-line doc."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any], base: Self | None = None) -> Self:
        """Build a config from ``key -> value`` pairs; string values are parsed by field type.

        Raises:
            ConfigError: unknown key (close matches suggested) or bad value.
        """
        base = base if base is not None else cls()
        names = [f.name for f in dataclasses.fields(cls)]
        hints = typing.get_type_hints(cls)
        changes: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key not in names:
                raise ConfigError(
                    f"unknown key {key!r} for {cls.__name__}{suggest(key, names)}; valid: {', '.join(sorted(names))}"
                )
            changes[key] = _parse(cls.__name__, key, raw, hints[key]) if isinstance(raw, str) else raw
        return dataclasses.replace(base, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a (TOML) mapping; same checks as :meth:`from_overrides`."""
        return cls.from_overrides(dict(data))

    def to_dict(self) -> dict[str, Any]:
        """Plain TOML/JSON-ready mapping (tuples become lists, None values dropped)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def config_hash(self) -> str:
        """Stable SHA-256 of the resolved config (first 16 hex digits)."""
        blob = json.dumps({"type": type(self).__name__, **self.to_dict()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _parse(owner: str, key: str, raw: str, tp: Any) -> Any:
    """Parse a ``--set`` string into the field's type, with a one-line error."""
    accepted = _base_type(tp)
    text = raw.strip()
    if type(None) in accepted and text.lower() in ("none", "null", ""):
        return None
    try:
        if bool in accepted:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tuple in accepted:
            elem = _elem_type(tp) or float
            items = [t.strip() for t in text.strip().strip("[]()").split(",") if t.strip()]
            if elem is str:
                items = [t.strip("\"'") for t in items]  # TOML/JSON-style quoted strings
            return tuple(elem(t) for t in items)
        if int in accepted and float not in accepted:
            f = float(text)
            if not f.is_integer():
                raise ValueError
            return int(f)
        if float in accepted:
            return float(text)
        if str in accepted:
            return text
    except ValueError:
        pass
    names = "/".join(t.__name__ for t in accepted if t is not type(None))
    raise ConfigError(f"{owner}.{key} = {raw!r} is invalid; expected {names}")

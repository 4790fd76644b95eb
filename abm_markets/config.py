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
import os
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
    min_len: int | None = None,
) -> Any:
    """Declare a config field with a doc string and constraints.

    Args:
        default: Default value (lists are stored as tuples so configs stay hashable).
        doc: One-line description shown by ``abm-markets list`` and in errors.
        ge, gt, le, lt: Numeric bounds (also applied element-wise to tuples).
        choices: The admissible values.
        min_len: Least number of entries of a tuple field. Default: 1 when the default is non-empty and the doc
            does not say what an empty value means (the word "empty"), else 0.
    """
    if isinstance(default, list):
        default = tuple(default)
    if min_len is None:
        min_len = 1 if isinstance(default, tuple) and default and "empty" not in doc.lower() else 0
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "min_len": min_len}
    return dataclasses.field(default=default, metadata=meta)


INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""Integers in configs are 64-bit (what TOML, numpy and torch store)."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` of ``/proc/meminfo``), or None if unknown.

    ``ABM_MARKETS_MEMORY_BYTES`` overrides the figure (tests; machines without ``/proc``).
    """
    env = os.environ.get("ABM_MARKETS_MEMORY_BYTES")
    if env:
        try:
            return int(env)
        except ValueError:
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'`` (up to EiB, then powers of ten)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.1f} {unit}" if n < 1024 else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} B"  # pragma: no cover


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
        self._check_memory()
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise :class:`ConfigError`."""

    def estimated_bytes(self) -> int | None:
        """Rough peak memory of a run with these settings, or None when not estimated.

        Scenario configs whose sizes the user sets (batch, households, goods, periods) override this; a config
        whose estimate exceeds the memory available (:func:`available_memory`) is rejected at construction,
        before anything is written.
        """
        return None

    def size_hint(self) -> str:
        """The settings to lower when :meth:`estimated_bytes` is too large (shown in the error).

        Default: the integer settings (and integer lists) whose doubling raises the estimate most.
        """
        import copy

        base = self.estimated_bytes() or 0
        drivers: list[tuple[float, str]] = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or "seed" in f.name:
                continue
            if isinstance(v, int):
                doubled: Any = 2 * v
            elif isinstance(v, tuple) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                doubled = tuple(2 * x for x in v)
            else:
                continue
            probe = copy.copy(self)
            object.__setattr__(probe, f.name, doubled)
            try:
                grown = probe.estimated_bytes() or 0
            except Exception:  # an estimate undefined for the probe: not a driver
                continue
            if grown > base:
                drivers.append((grown / max(base, 1), f"{f.name} ({_short(v)})"))
        drivers.sort(key=lambda t: -t[0])
        named = ", ".join(text for _, text in drivers[:4])
        return f"smaller settings: lower {named}" if named else "smaller settings"

    def _check_memory(self) -> None:
        need = self.estimated_bytes()
        if need is None:
            return
        have = available_memory()
        if have is not None and need > have:
            raise ConfigError(
                f"{type(self).__name__} needs about {format_bytes(need)} of memory but {format_bytes(have)} is "
                f"available (MemAvailable); expected {self.size_hint()}"
            )

    # ------------------------------------------------------------------ checks
    def _fail(self, name: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"{type(self).__name__}.{name} = {_short(value)} is invalid; expected {expected}")

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
        if isinstance(value, tuple):
            value = self._check_elements(f, tp, value)
        elif meta.get("choices") is not None and value not in meta["choices"]:
            raise self._fail(f.name, value, _describe(meta, accepted) + suggest(str(value), map(str, meta["choices"])))
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if isinstance(v, float) and not math.isfinite(v):
                    raise self._fail(f.name, value, "a finite number")
                if isinstance(v, int) and not INT_MIN <= v <= INT_MAX:
                    raise self._fail(f.name, value, _describe(meta, accepted) + " that fits in 64 bits (|x| < 2**63)")
                for key, bad in (
                    ("ge", lambda a, b: a < b),
                    ("gt", lambda a, b: a <= b),
                    ("le", lambda a, b: a > b),
                    ("lt", lambda a, b: a >= b),
                ):
                    bound = meta.get(key)
                    if bound is not None and bad(v, bound):
                        raise self._fail(f.name, value, _describe(meta, accepted))

    def _check_elements(self, f: dataclasses.Field[Any], tp: Any, value: tuple[Any, ...]) -> tuple[Any, ...]:
        """Entry types, choices and length of a tuple field; ints become floats in float tuples."""
        meta = f.metadata
        elem = _elem_type(tp)
        min_len = meta.get("min_len") or 0
        if len(value) < min_len:
            raise self._fail(f.name, value, f"at least {min_len} entr{'y' if min_len == 1 else 'ies'}")
        if elem is None or elem is Any:
            return value
        accepted = _base_type(elem)
        out = []
        for v in value:
            if float in accepted and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            ok = isinstance(v, accepted) and not (isinstance(v, bool) and bool not in accepted)
            if not ok:
                raise self._fail(f.name, value, "a list of " + _describe(meta, accepted))
            if meta.get("choices") is not None and v not in meta["choices"]:
                raise self._fail(f.name, value, "entries " + _describe(meta, accepted))
            out.append(v)
        value = tuple(out)
        object.__setattr__(self, f.name, value)
        return value

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


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened to ``limit`` characters for one-line errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 20] + f"... ({len(text)} chars)"


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
    raise ConfigError(f"{owner}.{key} = {_short(raw)} is invalid; expected {names}")

"""Helpers shared by the PettingZoo and Gymnasium front ends over any protocol economy.

Everything here reads the economy through :mod:`abm_markets.engine.protocol` only (decision groups, action
keys, observation spaces, logged variables), never a concrete economy.

Slots and units: a decision slot of a group decides for ``group.units`` agents; its action in a front end is
``group.action_space`` (one agent's action, shape ``S``) when ``units = 1`` and ``units`` such actions, shape
``(units, *S)``, otherwise (a planner acting for every household). An action key ``k`` of ``step`` takes
``[B, n_k, *S]`` with ``n_k`` the agents it covers (``count * units`` of the group that fills it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from torch import Tensor

from abm_markets.engine.protocol import ActionLayout, BatchedEconomy, DecisionGroup
from abm_markets.errors import ConfigError, UserError, suggest

DEFAULT_HORIZON = 200
"""Episode length of economies whose config has no ``horizon``."""

RENDER_MODES = (None, "ansi", "rgb_array")
"""Render modes of every front end: no rendering, a one-line text summary, a small bar-chart image."""

IMAGE_HEIGHT = 64
"""Height in pixels of the ``"rgb_array"`` image."""

IMAGE_MAX_WIDTH = 512
"""Widest ``"rgb_array"`` image; an observation with more entries shows its first ``IMAGE_MAX_WIDTH``."""

GROUP_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189]], np.uint8)
"""Bar colour of the first, second, ... agent group (cycled)."""


def entropy_seed() -> int:
    """A fresh seed from the operating system's entropy, in ``[0, 2^63)``."""
    return int(np.random.SeedSequence().entropy % (2**63))


def check_render_mode(render_mode: str | None) -> None:
    """Raises UserError (one line) unless ``render_mode`` is one of :data:`RENDER_MODES`."""
    if render_mode not in RENDER_MODES:
        raise UserError(f"render_mode = {render_mode!r} is invalid; expected None, 'ansi' or 'rgb_array'")


# ---------------------------------------------------------------------------------------- keywords
ENV_KEYWORDS = ("cfg", "render_mode", "normalize_obs", "device", "dtype")
"""Keywords of the investment envs that are not config fields."""


def config_from_settings(base: Any, settings: Mapping[str, Any], who: str, env_keywords: tuple[str, ...]) -> Any:
    """``base`` (a :class:`~abm_markets.config.Config`) with the fields in ``settings`` replaced and checked.

    String values are parsed by field type (``beta="0.95"`` works, as on the command line).

    Raises:
        ConfigError: One line: a keyword that is neither a config field nor one of ``env_keywords`` (close
            matches suggested), or a bad value (the config's own message).
    """
    fields = base.field_docs()
    for key in settings:
        if key not in fields:
            raise ConfigError(
                f"unknown keyword {key!r} for {who}{suggest(key, [*fields, *env_keywords])}; expected "
                f"{', '.join(env_keywords)} or a field of {type(base).__name__} ({', '.join(sorted(fields))})"
            )
    return type(base).from_overrides(dict(settings), base=base) if settings else base


# ------------------------------------------------------------------------------------- observations
def normalised_space(space: gymnasium.spaces.Box) -> gymnasium.spaces.Box:
    """``Box(0, 1)`` of ``space``'s shape: the space of :func:`normalise` (``float32``)."""
    return gymnasium.spaces.Box(0.0, 1.0, space.shape, np.float32)


def normalise(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map observations in ``Box(low, high)`` monotonically and exactly (no running statistics) into ``[0, 1]``.

    Per entry (``x [..., D]``, ``low`` and ``high`` ``[D]``): both bounds finite: ``(x - low) / (high - low)``;
    ``[low, inf)``: ``d / (1 + d)`` with ``d = x - low`` (a ratio to the steady state, ``x = 1`` above
    ``low = 0``, maps to 0.5); ``(-inf, high]``: ``1 / (1 + d)`` with ``d = high - x``; unbounded:
    ``(1 + x / (1 + |x|)) / 2``. Returns ``float32``, clipped to ``[0, 1]`` against rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    fin_lo, fin_hi = np.isfinite(lo), np.isfinite(hi)
    safe_lo, safe_hi = np.where(fin_lo, lo, 0.0), np.where(fin_hi, hi, 0.0)
    width = np.where(fin_lo & fin_hi & (safe_hi > safe_lo), safe_hi - safe_lo, 1.0)
    d_lo = np.maximum(x - safe_lo, 0.0)
    d_hi = np.maximum(safe_hi - x, 0.0)
    half_open = np.where(fin_lo, d_lo / (1.0 + d_lo), np.where(fin_hi, 1.0 / (1.0 + d_hi), 0.5))
    unbounded = 0.5 * (1.0 + x / (1.0 + np.abs(x)))
    out = np.where(fin_lo & fin_hi, (x - safe_lo) / width, np.where(fin_lo | fin_hi, half_open, unbounded))
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------- images
def bar_image(heights: Sequence[np.ndarray], groups: Sequence[int]) -> np.ndarray:
    """A small bar chart: ``uint8 [IMAGE_HEIGHT, W, 3]`` (white background).

    Args:
        heights: One array per agent (its normalised observation, entries in ``[0, 1]``); one bar per entry,
            agents separated by a gap.
        groups: Agent group index per agent (bar colour, :data:`GROUP_COLOURS` cycled).

    A grey line marks height 0.5 (where :func:`normalise` puts a steady-state ratio of 1).
    """
    n_bars = sum(int(np.size(h)) for h in heights) + max(len(heights) - 1, 0)
    bar = int(np.clip(IMAGE_MAX_WIDTH // max(n_bars, 1), 1, 8))
    width = int(np.clip(n_bars * bar, 64, IMAGE_MAX_WIDTH))
    img = np.full((IMAGE_HEIGHT, width, 3), 255, np.uint8)
    x = 0
    for h, group in zip(heights, groups, strict=True):
        colour = GROUP_COLOURS[group % len(GROUP_COLOURS)]
        for v in np.clip(np.nan_to_num(np.asarray(h, np.float64).reshape(-1)), 0.0, 1.0):
            if x + bar > width:
                break
            top = IMAGE_HEIGHT - round(float(v) * (IMAGE_HEIGHT - 1))
            img[top:, x : x + max(bar - 1, 1)] = colour
            x += bar
        x += bar
    img[IMAGE_HEIGHT // 2, :] = np.minimum(img[IMAGE_HEIGHT // 2, :], 160)
    return img


def resolve_horizon(economy: BatchedEconomy, horizon: int | None) -> int:
    """Episode length: ``economy.cfg.horizon`` if the config has one, else ``horizon`` (default 200).

    An explicit ``horizon`` that differs from the config's is rejected: the economy itself may read its
    horizon (e.g. a ``t / horizon`` observation), so the two must not disagree.
    """
    own = getattr(getattr(economy, "cfg", None), "horizon", None)
    if own is not None:
        if horizon is not None and int(horizon) != int(own):
            raise ConfigError(
                f"horizon = {horizon} conflicts with the economy's cfg.horizon = {own}; "
                "expected no horizon argument (or the same value) for economies whose config sets one"
            )
        horizon = own
    elif horizon is None:
        horizon = DEFAULT_HORIZON
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"horizon = {horizon!r} is invalid; expected a positive integer number of periods")
    return int(horizon)


# -------------------------------------------------------------------------------------------- actions
def _is_discrete(space: gymnasium.spaces.Space) -> bool:
    return isinstance(space, gymnasium.spaces.Discrete | gymnasium.spaces.MultiDiscrete)


def check_action_space(group: DecisionGroup) -> None:
    """Reject action spaces the front ends cannot map to tensors (``Box``, ``Discrete``, ``MultiDiscrete`` work)."""
    space = group.action_space
    if not isinstance(space, gymnasium.spaces.Box) and not _is_discrete(space):
        raise ConfigError(
            f"group {group.name!r} has action space {space}; expected a Box, Discrete or MultiDiscrete space"
        )


def slot_action_space(group: DecisionGroup) -> gymnasium.spaces.Space:
    """The action space of one slot: a private copy of ``group.action_space`` (seeding it affects nobody else);
    with ``units > 1``, ``units`` copies stacked on a leading axis (``Box`` or ``MultiDiscrete``)."""
    check_action_space(group)
    space = group.action_space
    if group.units == 1:
        return copy.deepcopy(space)
    u = group.units
    if isinstance(space, gymnasium.spaces.Box):
        low = np.broadcast_to(space.low, (u, *space.shape)).copy()
        high = np.broadcast_to(space.high, (u, *space.shape)).copy()
        return gymnasium.spaces.Box(low, high, dtype=space.dtype)
    if isinstance(space, gymnasium.spaces.Discrete):
        return gymnasium.spaces.MultiDiscrete(np.full(u, space.n), start=np.full(u, space.start))
    nvec = np.broadcast_to(space.nvec, (u, *space.shape)).copy()
    return gymnasium.spaces.MultiDiscrete(nvec, start=np.broadcast_to(space.start, nvec.shape).copy())


def action_array(value: Any, layout: ActionLayout, units: int, who: str) -> np.ndarray:
    """One slot's action as ``[units, *S]`` (``float64``, or ``int64`` for integer actions).

    Raises:
        UserError: ``value`` has the wrong number of entries, or a non-integer value for integer actions.
    """
    shape = (units, *layout.shape)
    expected = shape[1:] if units == 1 else shape
    arr = np.asarray(value)
    if arr.size != int(np.prod(shape)):
        raise UserError(f"action of {who} has shape {arr.shape}; expected {expected}")
    if not layout.discrete:
        return arr.astype(np.float64).reshape(shape)
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.equal(np.mod(arr, 1), 0)))
    )
    if not integral:
        raise UserError(f"action of {who} is {value!r}; expected integer action indices")
    return arr.astype(np.int64).reshape(shape)


# -------------------------------------------------------------------------------------------- logging
def split_logged(economy: BatchedEconomy, logged: Mapping[str, Tensor]) -> tuple[dict, dict]:
    """Logged values of economy 0 split into ``({group: {name: [n, ...]}}, {name: value})``.

    Variables declared ``over`` a group go to that group's agents, ``over = "economy"`` ones to everybody;
    others (``good``, groups that are not agents) are left out.
    """
    by_group: dict[str, dict[str, Tensor]] = {}
    economy_level: dict[str, Any] = {}
    for var in getattr(economy.spec, "logged", ()):
        if var.name not in logged:
            continue
        value = logged[var.name][0].detach()
        if var.over == "economy":
            economy_level[var.name] = to_python(value)
        else:
            by_group.setdefault(var.over, {})[var.name] = value.double().cpu()
    return by_group, economy_level


def to_python(x: Tensor) -> Any:
    """A 0-d tensor as a ``float`` (``int`` for integer dtypes); others as nested lists."""
    x = x.detach().cpu()
    if x.dim() == 0:
        return int(x) if not x.dtype.is_floating_point else float(x.double())
    return x.double().tolist() if x.dtype.is_floating_point else x.tolist()


def summary_line(t: int, economy: BatchedEconomy, logged: Mapping[str, Tensor] | None) -> str:
    """``t=... name=value ...``: the economy-level logged values, and the means of the others, of economy 0."""
    parts = [f"t={t}"]
    if logged is not None:
        for var in getattr(economy.spec, "logged", ()):
            if var.name in logged:
                value = logged[var.name][0].detach().double().mean().item()
                parts.append(f"{var.name}={value:.4g}" if var.over == "economy" else f"mean {var.name}={value:.4g}")
    return " ".join(parts)

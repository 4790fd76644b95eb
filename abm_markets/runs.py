"""Run directories: atomic files, manifest, logs, checkpoints.

A run directory holds::

    config.toml        fully resolved config ([run] and [scenario] tables)
    manifest.json      config hash, seed, git revision, package versions, device, wall time
    summary.json       headline figures, including gaps to reference solutions
    metrics.parquet    training / solver curves, one row per iteration (long or wide)
    steps.parquet      long-format evaluation log: t, economy, agent, variable, value (+ optional columns)
    markets.parquet    long-format market log: t, economy, good, variable, value (+ optional columns)
    checkpoints/       torch state dicts (load with ``weights_only=True``)
    plots/*.png        figures drawn from the logs

Every scenario writes ``steps.parquet`` (and ``markets.parquet`` where it has markets) through
:meth:`RunContext.write_log`, which checks the schema of docs/logs.md (:func:`log_frame`).

Every file is written to a temporary name in the same folder and renamed into
place (``os.replace``), so a killed run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import tomli_w
import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_PACKAGES = ("abm-markets", "torch", "numpy", "polars", "mesa", "tianshou", "gymnasium", "pettingzoo", "numba")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomic UTF-8 text write."""
    atomic_write_bytes(path, text.encode())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (tensors and numpy values converted, NaN -> null)."""
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def atomic_write_parquet(path: Path, df: pl.DataFrame) -> None:
    """Atomic Parquet write."""
    buf = io.BytesIO()
    df.write_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_toml(path: Path, data: Mapping[str, Any]) -> None:
    """Atomic TOML write."""
    atomic_write_text(path, tomli_w.dumps(_jsonable(data)))


def atomic_save_figure(path: Path, fig: Figure, dpi: int = 110) -> None:
    """Atomic PNG write of a matplotlib figure; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def atomic_torch_save(path: Path, obj: Any) -> None:
    """Atomic ``torch.save`` (tensors, dicts of tensors and plain Python values only)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def git_revision() -> str | None:
    """Current git commit of the source tree, with ``+dirty`` if modified, or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine results."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def resolve_device(name: str) -> torch.device:
    """Map ``cpu|cuda|auto`` to a torch device (``auto`` picks CUDA when available)."""
    from abm_markets.errors import UserError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name!r} requested but CUDA is not available; use cpu or auto")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UserError(
                f"--device {name!r} is invalid; expected cuda or cuda:N with N < {torch.cuda.device_count()}"
            )
        return torch.device(name)
    raise UserError(f"unknown device {name!r}; valid: cpu, cuda, auto")


@dataclass
class RunContext:
    """What a scenario gets to write its results: paths, seed, device, loggers.

    Attributes:
        out: The run directory (created by the runner before the scenario starts).
        seed: The run's seed; derive every generator from it.
        device: Torch device for the batched engine.
        resume: True when the user asked to resume from ``out``'s last checkpoint.
        progress_enabled: Whether progress bars are shown.
    """

    out: Path
    seed: int
    device: torch.device
    resume: bool = False
    progress_enabled: bool = True
    _metrics: list[dict[str, Any]] = field(default_factory=list)
    _t0: float = field(default_factory=time.perf_counter)

    # ----------------------------------------------------------- randomness
    def generator(self, offset: int = 0, device: torch.device | None = None) -> torch.Generator:
        """A torch generator seeded with ``seed + offset`` on ``device`` (default: the run's)."""
        g = torch.Generator(device=device or self.device)
        g.manual_seed(self.seed + offset)
        return g

    def np_rng(self, offset: int = 0) -> np.random.Generator:
        """A numpy generator seeded with ``seed + offset``."""
        return np.random.default_rng(self.seed + offset)

    # ---------------------------------------------------------------- files
    def path(self, name: str) -> Path:
        return self.out / name

    def write_table(self, name: str, df: pl.DataFrame) -> Path:
        """Write ``name.parquet`` (``name`` without extension) atomically."""
        path = self.out / f"{name}.parquet"
        atomic_write_parquet(path, df)
        return path

    def write_log(self, kind: str, df: pl.DataFrame) -> Path:
        """Write ``steps.parquet`` or ``markets.parquet`` (``kind``) after checking it against the log schema.

        Every scenario writes its long-format logs through this method, so every run's logs read the same way
        (:func:`log_frame`, docs/logs.md).
        """
        return self.write_table(kind, log_frame(df, kind))

    def save_figure(self, name: str, fig: Figure) -> Path:
        """Write ``plots/name.png`` atomically."""
        path = self.out / "plots" / f"{name}.png"
        atomic_save_figure(path, fig)
        return path

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.out / f"{name}.json"
        atomic_write_json(path, obj)
        return path

    # -------------------------------------------------------------- metrics
    def log_metrics(self, **row: Any) -> None:
        """Append one row of training/solver metrics (flushed by :meth:`flush_metrics`)."""
        row.setdefault("wall_s", time.perf_counter() - self._t0)
        self._metrics.append({k: _scalar(v) for k, v in row.items()})

    def set_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace the metric rows (used when resuming from a checkpoint)."""
        self._metrics = list(rows)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return self._metrics

    def flush_metrics(self) -> Path | None:
        """Write ``metrics.parquet`` from the rows logged so far (atomically)."""
        if not self._metrics:
            return None
        return self.write_table("metrics", pl.DataFrame(self._metrics, infer_schema_length=None))

    # ---------------------------------------------------------- checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self, name: str, state: Mapping[str, Any]) -> Path:
        """Atomically save ``checkpoints/name.pt`` and point ``checkpoints/latest`` at it."""
        path = self.checkpoint_dir / f"{name}.pt"
        atomic_torch_save(path, dict(state))
        atomic_write_text(self.checkpoint_dir / "latest", name + "\n")
        return path

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """Load the latest checkpoint with ``weights_only=True``, or None.

        Raises:
            UserError: ``checkpoints/latest`` names something outside ``checkpoints/`` or an unreadable file
                (one line naming it and the last good checkpoint).
        """
        path = latest_checkpoint_path(self.out)
        if path is None:
            return None
        return load_checkpoint(path, self.out, map_location=self.device)

    # ------------------------------------------------------------- progress
    @contextlib.contextmanager
    def progress(self, total: int, desc: str, unit: str = "it") -> Iterator[Any]:
        """A tqdm progress bar with ETA (disabled when not interactive or ``progress_enabled`` is off)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.progress_enabled, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()


_CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def latest_checkpoint_path(out: Path) -> Path | None:
    """The checkpoint ``out/checkpoints/latest`` points at, or None when there is no marker.

    Raises:
        UserError: The marker is unreadable or names anything but a file of ``checkpoints/`` (a path separator,
            ``..``, an absolute path).
    """
    from abm_markets.errors import UserError

    ckdir = out / "checkpoints"
    marker = ckdir / "latest"
    if not marker.exists() and not marker.is_symlink():
        return None
    try:
        name = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {str(marker)!r} ({_why(e)}); expected the name of a checkpoint") from None
    if not _CHECKPOINT_NAME.match(name) or ".." in name:
        raise UserError(
            f"{str(marker)!r} names {name[:80]!r}; expected the name of a checkpoint inside {str(ckdir)!r} "
            "(no path separators, no '..')"
        )
    return ckdir / f"{name}.pt"


def _why(e: BaseException) -> str:
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def _try_load(path: Path, map_location: Any = "cpu") -> tuple[Any, str | None]:
    """``(state, None)`` or ``(None, reason)`` for a checkpoint file."""
    try:
        if not path.is_file():
            return None, "missing" if not path.exists() else "not a file"
        if path.stat().st_size == 0:
            return None, "empty"
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, pickle errors, unsupported types: all mean "unreadable"
        return None, f"unreadable: {_why(e)}"
    if not isinstance(state, dict):
        return None, f"holds a {type(state).__name__}, not a dict of tensors"
    return state, None


def last_good_checkpoint(out: Path, exclude: Path | None = None) -> Path | None:
    """The newest ``checkpoints/iter*.pt`` other than ``exclude`` that loads, or None."""
    ckdir = out / "checkpoints"
    if not ckdir.is_dir():
        return None
    for path in sorted(ckdir.glob("iter*.pt"), reverse=True):
        if exclude is not None and path.name == exclude.name:
            continue
        if _try_load(path)[1] is None:
            return path
    return None


def load_checkpoint(path: Path, out: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint of run ``out``; a bad file is one line naming it and the checkpoint to fall back on.

    Raises:
        UserError: The file is missing, empty, truncated or not a state dict.
    """
    from abm_markets.errors import UserError

    state, reason = _try_load(path, map_location)
    if reason is None:
        return state
    good = last_good_checkpoint(out, exclude=path)
    marker = out / "checkpoints" / "latest"
    if good is not None:
        fix = (
            f"the last good checkpoint is {good.stem}: point {str(marker)!r} at it "
            f"(echo {good.stem} > {marker}) and resume again, or start a new run"
        )
    else:
        fix = "no other checkpoint of this run loads; start a new run"
    raise UserError(f"checkpoint {str(path)!r} is {reason}; {fix}")


class RunLock:
    """Exclusive ownership of a run directory: ``DIR/.lock`` holding the owner's pid, locked with ``flock``.

    The lock lives on an open file descriptor, so it is released when the owner exits or dies (``kill -9``
    included); a ``.lock`` file left behind by a dead owner is stale and taken over silently.
    """

    def __init__(self, out: Path):
        self.path = Path(out) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise a one-line :class:`~abm_markets.errors.UserError` naming the owner."""
        import fcntl

        from abm_markets.errors import UserError

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            except OSError:
                owner = "unknown"
            os.close(fd)
            raise UserError(
                f"run directory {str(self.path.parent)!r} is in use by another process (pid {owner}); "
                "expected one process per run directory: wait for it to finish or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the ``.lock`` file stays; it is stale once released)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _scalar(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_manifest(
    out: Path,
    *,
    scenario: str,
    config_hash: str,
    seed: int,
    device: torch.device,
    wall_s: float | None,
    status: str,
) -> None:
    """Write ``manifest.json``."""
    atomic_write_json(
        out / "manifest.json",
        {
            "scenario": scenario,
            "config_hash": config_hash,
            "seed": seed,
            "git_revision": git_revision(),
            "versions": package_versions(),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "torch_threads": torch.get_num_threads(),
            "wall_s": wall_s,
            "status": status,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


# ------------------------------------------------------------------------------------ long-format logs
LOG_COLUMNS: dict[str, dict[str, type[pl.DataType]]] = {
    "steps": {"t": pl.Int64, "economy": pl.Int64, "agent": pl.Int64, "variable": pl.String, "value": pl.Float64},
    "markets": {"t": pl.Int64, "economy": pl.Int64, "good": pl.Int64, "variable": pl.String, "value": pl.Float64},
}
"""Required columns of ``steps.parquet`` and ``markets.parquet`` and their dtypes (docs/logs.md)."""

LOG_OPTIONAL: dict[str, type[pl.DataType]] = {
    "session": pl.Int64,
    "case": pl.String,
    "mechanism": pl.String,
    "policy": pl.String,
    "group": pl.String,
}
"""Columns a log may add, in this order after the required ones (docs/logs.md says what each means)."""


def log_frame(df: pl.DataFrame, kind: str = "steps") -> pl.DataFrame:
    """Check a long-format log against the schema of docs/logs.md and normalise it.

    Required columns (``LOG_COLUMNS[kind]``) must be present and non-null; integer columns must hold integers
    (any width), ``variable`` strings (or categoricals), ``value`` numbers (NaN allowed). Optional columns
    (``LOG_OPTIONAL``) may be null where they do not apply. Anything else is rejected, so every column a run
    writes is documented.

    Args:
        df: The log.
        kind: ``steps`` or ``markets``.

    Returns:
        The log with the schema's dtypes and column order (required, then optional in ``LOG_OPTIONAL`` order).

    Raises:
        ValueError: A column is missing, unknown, null where it may not be, or of the wrong kind (a bug in the
            scenario that wrote the log, so not a :class:`~abm_markets.errors.UserError`).
    """
    if kind not in LOG_COLUMNS:
        raise ValueError(f"log kind {kind!r} is unknown; expected one of {', '.join(LOG_COLUMNS)}")
    required = LOG_COLUMNS[kind]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{kind} log lacks column(s) {', '.join(missing)}; expected {', '.join(required)}")
    extra = [c for c in df.columns if c not in required and c not in LOG_OPTIONAL]
    if extra:
        raise ValueError(
            f"{kind} log has undocumented column(s) {', '.join(extra)}; expected {', '.join(required)} and "
            f"optionally {', '.join(LOG_OPTIONAL)} (docs/logs.md)"
        )
    casts = []
    for name, want in {**required, **{c: t for c, t in LOG_OPTIONAL.items() if c in df.columns}}.items():
        have = df.schema[name]
        ok = (
            (want is pl.Int64 and (have.is_integer() or have == pl.Null))
            or (want is pl.Float64 and (have.is_numeric() or have == pl.Null))
            or (want is pl.String and have in (pl.String, pl.Categorical, pl.Enum, pl.Null))
        )
        if not ok:
            raise ValueError(f"{kind} log column {name!r} is {have}; expected {want.__name__}")
        casts.append(pl.col(name).cast(want))
    out = df.select(casts)
    for name in required:
        nulls = out[name].null_count()
        if nulls:
            raise ValueError(f"{kind} log column {name!r} has {nulls} null(s); expected a value in every row")
    return out


def long_frame(columns: Mapping[str, Any], id_cols: tuple[str, ...]) -> pl.DataFrame:
    """Melt wide columns into the long format ``(*id_cols, variable, value)``."""
    df = pl.DataFrame({k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in columns.items()})
    value_cols = [c for c in df.columns if c not in id_cols]
    return df.unpivot(index=list(id_cols), on=value_cols, variable_name="variable", value_name="value").with_columns(
        pl.col("value").cast(pl.Float64)
    )


# ------------------------------------------------------------------------------------ finiteness
def all_finite(x: Tensor) -> bool:
    return bool(torch.isfinite(x.detach()).all())


def nonfinite_kind(x: Tensor) -> str:
    """``"NaN"`` if ``x`` holds a NaN, else ``"inf"``."""
    return "NaN" if bool(torch.isnan(x.detach()).any()) else "inf"


def nonfinite_kind_float(v: float) -> str:
    return "NaN" if math.isnan(v) else "inf"


def nonfinite_tensors(obj: Any, prefix: str = "") -> list[str]:
    """Paths (``a.b.0``) of the floating tensors and floats in a nested checkpoint state that are not finite."""
    out: list[str] = []
    if isinstance(obj, Tensor):
        if obj.is_floating_point() and not all_finite(obj):
            out.append(f"{prefix} ({nonfinite_kind(obj)})")
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            out.append(f"{prefix} ({nonfinite_kind_float(obj)})")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(nonfinite_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.extend(nonfinite_tensors(v, f"{prefix}.{i}" if prefix else str(i)))
    return out

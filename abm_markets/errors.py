"""User-facing errors.

Anything the user can get wrong (a config key, a value, a file, a CLI argument)
raises a :class:`UserError` subclass. The command line prints its message as one
line and exits with the error's ``exit_status`` (2 for input errors); library users
catch it like any exception.

:class:`TrainingDiverged` is the one error that is raised after a run started: a
NaN or inf appeared in training (losses, network parameters, the economy's state).
It exits with status 3, so scripts can tell "bad input, nothing written" (2) from
"the run started, diverged and kept its last good checkpoint" (3).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """An error in user input: the message names what was wrong and what is expected."""

    exit_status: int = 2
    """Exit status of the command line for this error."""


class ConfigError(UserError):
    """A configuration key or value is invalid."""


class TrainingDiverged(UserError):
    """Training produced a NaN or inf (loss, network parameter, economy or solver state); the run stopped.

    Raised at the end of the iteration (epoch for SRL) where the check failed, before anything of that
    iteration is checkpointed, so ``checkpoints/latest`` still names the last good checkpoint.

    Attributes:
        iteration: The iteration (SRL: epoch) whose check failed, counted from 1.
        group: The learning group (SRL: objective/policy group), or None for the economy's state.
        what: What went non-finite, e.g. ``"NaN in parameter actor.0.weight"``.
        checkpoint: Path of the last good checkpoint, or None when none was written.
        unit: ``"iteration"`` (training) or ``"epoch"`` (SRL).
    """

    exit_status = 3

    def __init__(
        self,
        iteration: int,
        group: str | None,
        what: str,
        checkpoint: str | None = None,
        unit: str = "iteration",
    ) -> None:
        self.iteration, self.group, self.what, self.checkpoint, self.unit = iteration, group, what, checkpoint, unit
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.unit} {self.iteration}" + (f", group {self.group!r}" if self.group is not None else "")
        kept = (
            f"last good checkpoint: {self.checkpoint}" if self.checkpoint is not None else "no checkpoint was written"
        )
        return f"training diverged at {where}: {self.what}; {kept} (a lower lr or another seed may help)"

    def with_checkpoint(self, checkpoint: str | None) -> TrainingDiverged:
        """The same error naming ``checkpoint`` as the last good one."""
        return TrainingDiverged(self.iteration, self.group, self.what, checkpoint, self.unit)

    def __reduce__(self) -> tuple[object, ...]:  # picklable (e.g. across Ray workers of a sweep)
        return (TrainingDiverged, (self.iteration, self.group, self.what, self.checkpoint, self.unit))


def suggest(name: str, options: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for close matches of ``name`` or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def unknown(kind: str, name: str, options: Iterable[str]) -> UserError:
    """Build the standard error for an unknown name, listing the valid ones."""
    opts = sorted(options)
    return UserError(f"unknown {kind} {name!r}{suggest(name, opts)}; valid: {', '.join(opts)}")

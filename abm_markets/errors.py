"""User-facing errors.

Anything the user can get wrong (a config key, a value, a file, a CLI argument)
raises a :class:`UserError` subclass. The command line prints its message as one
line and exits with status 2; library users catch it like any exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """An error in user input: the message names what was wrong and what is expected."""


class ConfigError(UserError):
    """A configuration key or value is invalid."""


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

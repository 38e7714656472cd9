"""The one exception type for "the user's input is wrong": a bad option value, a damaged or
mismatched file, missing data, a path genae may not write, an interrupted run. `genae` prints it as
one line, `genae: <file or option>: <what is wrong>[; what to do]`, and exits with 2 (130 when
interrupted); any other exception is a bug and shows its traceback.

    raise UserError("--beta -1: a KL weight must be finite and >= 0")
"""

from __future__ import annotations


class UserError(ValueError):
    """Wrong input, named in the message (a ValueError, so library callers may catch either)."""

    exit_code = 2


class Interrupted(UserError):
    """The user stopped a run (Ctrl-C); the message says how to continue it."""

    exit_code = 130

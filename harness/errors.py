"""The one exception type that reaches the user as a single clear line."""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input or a failed precondition, described in one line that names the file or field.

    The CLI prints it as ``esr: error: <message>`` and exits with status 2; anything else that
    escapes is a bug and keeps its traceback.
    """

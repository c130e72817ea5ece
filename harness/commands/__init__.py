"""The `esr` subcommands.

Each subcommand is a module in this package that defines ``NAME``, ``HELP`` (one line),
``EXAMPLE`` (shown at the end of ``--help``), ``add_arguments(parser)`` and ``run(args) -> int``.
A command only parses its arguments and calls the modules that do the work.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from harness.errors import HarnessError
from harness.protocols import list_protocols

# Module names, in the order `esr --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "list_cmd",
    "evaluate",
    "compare",
    "check",
    "leaderboard",
    "report",
    "package",
    "summary",
    "data",
    "prune",
    "train",
    "collapse",
    "bench",
)


def _load_commands() -> list[ModuleType]:
    return [importlib.import_module(f"harness.commands.{name}") for name in COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="esr",
        description=(
            "Benchmark harness for efficient x4 super-resolution, under the protocols of the NTIRE\n"
            f"Efficient SR challenges: {', '.join(list_protocols())} (--protocol; default ntire2022)."
        ),
        epilog="Example: esr evaluate clb_imdn imdn_baseline --data samples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _load_commands():
        sub = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.HELP,
            epilog=f"Example:\n  {module.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command; a HarnessError becomes one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except HarnessError as error:
        print(f"esr: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("esr: interrupted", file=sys.stderr)
        return 130

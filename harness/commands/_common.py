"""Options and steps shared by the commands that evaluate: where inputs come from, and the run itself.

Environment variables are read here, at the edge, and passed down as plain arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import harness
from harness.atomic import write_json_atomic
from harness.catalog import resolve_many
from harness.cells import CELL_NAMES, parse_cells
from harness.constraints import apply_constraints
from harness.data import open_dataset
from harness.errors import HarnessError
from harness.leaderboard import Leaderboard, RunFile, annotate_published, build_leaderboard
from harness.metrics.fidelity import WINDOW_SIZE as SSIM_WINDOW
from harness.protocols import Protocol, TimingSettings, TimingValueError, list_protocols, load_protocol
from harness.runner import RunConfig, evaluate_run, sandbox, worker_threads
from harness.runner.device_sharing import DEFAULT_WORKERS_PER_DEVICE
from harness.runner.executors import EXECUTORS, ExecutorSettings, make_executor
from harness.runner.lanes import Executor
from harness.submissions import resolve_submission
from harness.submissions.manifest import ZOO_EDITIONS, zoo_edition, zoo_env_variable
from harness.timing import CLOCKS, resolve_device, timer_method
from harness.zoo import compare_published

# The published tables ship with the package (results/published/ in a checkout).
PUBLISHED_DIR = harness.PUBLISHED_DIR


def env_path(variable: str) -> Path | None:
    """The folder an environment variable names, or None when it is unset or empty."""
    value = os.environ.get(variable)
    return Path(value) if value else None


def add_zoo_option(parser: argparse.ArgumentParser) -> None:
    """--zoo: the official repository checkouts that <edition>:<team> names resolve in."""
    parser.add_argument(
        "--zoo",
        action="append",
        default=[],
        metavar="[EDITION=]PATH",
        help="checkout of an edition's official repository (NTIRE2022_ESR ... NTIRE2026_ESR), for "
        "<edition>:<team|id|all>; give EDITION= when several editions are named "
        "(default: $ESR_NTIRE2022_ZOO ... $ESR_NTIRE2026_ZOO)",
    )


def zoo_checkouts(values: list[str], specs: list[str]) -> dict[str, Path]:
    """Edition -> checkout: the environment variables, overridden by ``--zoo [EDITION=]PATH``.

    A bare PATH belongs to the one edition the submission specs name; with several, it is an error.
    """
    checkouts = {
        edition: path for edition in ZOO_EDITIONS if (path := env_path(zoo_env_variable(edition))) is not None
    }
    named = sorted({edition for spec in specs if (edition := zoo_edition(spec)) is not None})
    for value in values:
        edition, equals, path = value.partition("=")
        if equals and edition in ZOO_EDITIONS:
            checkouts[edition] = Path(path)
        elif len(named) == 1:
            checkouts[named[0]] = Path(value)
        else:
            which = f"the submissions name {', '.join(named)}" if named else "no zoo submission is named"
            raise HarnessError(f"--zoo {value}: say which edition it is (--zoo ntire2026=PATH): {which}")
    return checkouts


def add_weights_source_options(parser: argparse.ArgumentParser) -> None:
    """--model-zoo / --weights-cache / --trust-weights: where weights come from and how they load."""
    parser.add_argument(
        "--model-zoo",
        type=Path,
        default=env_path("ESR_MODEL_ZOO"),
        help="folder of released weights looked up by file name (default: $ESR_MODEL_ZOO)",
    )
    parser.add_argument(
        "--weights-cache",
        type=Path,
        default=None,
        help="where downloaded weights are kept (default: ~/.cache/esr-harness)",
    )
    parser.add_argument(
        "--trust-weights",
        action="store_true",
        help="allow checkpoints that need arbitrary pickle (only for files you trust)",
    )


def edition_splits() -> dict[str, list[str]]:
    """Each data split the editions' protocol files name, with the editions that have it, in the
    order the files list them (``--split`` offers these)."""
    splits: dict[str, list[str]] = {}
    for name in list_protocols():
        for mode in load_protocol(name).data:
            splits.setdefault(mode.split, []).append(name)
    return splits


def _split_help(splits: dict[str, list[str]]) -> str:
    """``--split``'s help: each split, and the editions that have it unless every edition does."""
    every = len(list_protocols())
    named = [
        split if len(editions) == every else f"{split} ({', '.join(editions)})"
        for split, editions in splits.items()
    ]
    return f"the data split, as the editions' protocols name it: {', '.join(named)} (default: val)"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of one evaluation run, shared by `esr evaluate` and `esr check`."""
    parser.add_argument("--data", default="samples", help="dataset folder, or 'samples' (default)")
    splits = edition_splits()
    parser.add_argument("--split", choices=list(splits), default="val", help=_split_help(splits))
    parser.add_argument(
        "--allow-partial", action="store_true", help="accept a DIV2K or DIV2K_LSDIR split with fewer images"
    )
    parser.add_argument("--protocol", default="ntire2022", help="evaluation protocol (default: ntire2022)")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu (default: auto)")
    parser.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default="local",
        help="where workers run: "
        + "; ".join(f"{name}: {kind.description}" for name, kind in EXECUTORS.items())
        + " (default: local)",
    )
    parser.add_argument(
        "--devices",
        default=None,
        metavar="LIST",
        help="local executor: one lane per device, e.g. cuda:0,cuda:1 (default: --device alone)",
    )
    parser.add_argument(
        "--ray-address", default=None, help="join this Ray cluster (default: start one for this command)"
    )
    parser.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        metavar="N",
        help="Ray lanes: bundles of one GPU, or of --threads CPUs (default: every GPU; 1 on CPUs)",
    )
    parser.add_argument(
        "--sandbox",
        choices=sandbox.MODES,
        default="auto",
        help="run workers under bubblewrap: auto (where the host allows it, else warn), required, off "
        "(default: auto; docs/integrity.md)",
    )
    parser.add_argument("--weights", type=Path, default=None, help="weights file for a single submission")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per image, median kept")
    parser.add_argument(
        "--warmup-seconds", type=float, default=None, help="warm-up time of each submission before each round"
    )
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=None,
        help="interleaved timing rounds: 'auto' (default) times until every runtime verdict is decided"
        " (see docs/rounds-until-decided.md), N a fixed count",
    )
    parser.add_argument(
        "--min-rounds",
        type=int,
        default=None,
        help="rounds before the first look (default: the protocol's, 5)",
    )
    parser.add_argument("--max-rounds", type=int, default=30, help="cap of --rounds auto (default: 30)")
    parser.add_argument(
        "--max-timing-seconds",
        type=float,
        default=None,
        help="--rounds auto: start no new round after this long timing on one lane (default: no limit)",
    )
    parser.add_argument(
        "--resolution",
        type=float,
        default=0.01,
        help="--rounds auto: stop once the ratio's interval is within this fraction either side (default: 0.01)",
    )
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="what runtimes are read on: wall (default; the protocol's: perf_counter on the CPU, CUDA "
        "events on a GPU) or cpu (a CPU run's CPU time, steadier on a loaded machine, not the protocol's"
        "; docs/evaluating.md)",
    )
    parser.add_argument(
        "--fresh-workers",
        action="store_true",
        default=None,
        help="start every timed submission's worker afresh before each round after the first, so a "
        "process's lasting luck (memory layout, placement) varies between rounds and enters the "
        "interval (slower: one model load per submission and round; docs/rounds-until-decided.md)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time limit of one submission's worker (default: the protocol's, 3600)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the round order (default: random, recorded)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of each worker (default: every core on a GPU run, half of them on a CPU run)",
    )
    parser.add_argument(
        "--cells",
        default="fp32",
        metavar="LIST",
        help="deployment cells measured beside the protocol's fp32 eager figure, never ranked: any of "
        + ",".join(CELL_NAMES)
        + " (default: fp32); e.g. --cells fp32,bf16,compile,onnxruntime",
    )
    parser.add_argument(
        "--workers-per-device",
        type=_at_least_two,
        default=DEFAULT_WORKERS_PER_DEVICE,
        metavar="N",
        help="workers alive at once on one device; a lane's submissions are timed in subgroups of N-1 "
        f"beside the baseline (default: {DEFAULT_WORKERS_PER_DEVICE})",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("results/runs/cache"),
        help="result cache, keyed by submission, weights, data, protocol and device",
    )
    parser.add_argument("--force", action="store_true", help="recompute cached results")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_weights_source_options(parser)
    add_zoo_option(parser)


def _cells(text: str) -> tuple[str, ...]:
    """``--cells``: fp32 eager always first (every other cell's drop is measured against it)."""
    try:
        cells = parse_cells(text)
    except ValueError as error:
        raise HarnessError(str(error)) from None
    return ("fp32", *(cell for cell in cells if cell != "fp32"))


def _at_least_two(text: str) -> int:
    """``--workers-per-device``: a submission and its baseline must both fit."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (a submission and its baseline), not {value}")
    return value


def _rounds(text: str) -> int | str:
    """``--rounds``: 'auto' or a whole number (its range is checked with the other settings)."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number, got {text!r}") from None


# The command-line flag of each timing field a run may change (harness.protocols.timing.OVERRIDABLE).
_TIMING_FLAGS = {
    "warmup_seconds": "--warmup-seconds",
    "repeats": "--repeats",
    "rounds": "--rounds",
    "timeout_seconds": "--timeout",
    "min_rounds": "--min-rounds",
    "max_rounds": "--max-rounds",
    "max_timing_seconds": "--max-timing-seconds",
    "resolution": "--resolution",
    "clock": "--clock",
    "fresh_workers": "--fresh-workers",
    "ratio_limit": "the protocol's runtime limit",
}


def _timing_settings(
    args: argparse.Namespace, protocol: Protocol, ratio_limit: float | None
) -> TimingSettings:
    """The protocol's timing with what the command line changes; a bad value names its flag.

    The protocol's round count is the minimum of ``--rounds auto`` (the default) and the count of
    a plain ``--rounds N`` run; ``ratio_limit`` is what ``auto`` decides each runtime ratio against.
    """
    auto = args.rounds in (None, "auto")
    changes = {
        "warmup_seconds": args.warmup_seconds,
        "repeats": args.repeats,
        "rounds": None if auto else args.rounds,
        "timeout_seconds": args.timeout,
        "min_rounds": args.min_rounds if args.min_rounds is not None else protocol.timing.rounds,
        "max_rounds": args.max_rounds,
        "max_timing_seconds": args.max_timing_seconds,
        "ratio_limit": ratio_limit,
        "resolution": args.resolution,
        "clock": args.clock,
        "fresh_workers": args.fresh_workers,
    }
    try:
        timing = protocol.timing.overridden(**changes)
        return dataclasses.replace(timing, rounds=None) if auto else timing
    except TimingValueError as error:
        flag = _TIMING_FLAGS[error.field]
        # "at least min_rounds (5)" -> "at least --min-rounds (5)": name fields as the flags they are.
        expected = re.sub(r"\w+", lambda word: _TIMING_FLAGS.get(word[0], word[0]), error.expected)
        raise HarnessError(f"{flag}: must be {expected}, got {error.value}") from None


def run_evaluation(
    args: argparse.Namespace,
    *,
    save_images_dir: Path | None = None,
    log_dir: Path | None = None,
    reference: bool = False,
) -> dict[str, Any]:
    """Resolve everything the arguments name, run, and return the run document with constraints.

    ``reference``: the first submission takes the baseline's role (``esr compare``), each ratio is
    decided against 1.0, and the protocol's constraints are not applied.
    """
    protocol = load_protocol(args.protocol)
    submissions = resolve_many(args.submissions, zoo=zoo_checkouts(args.zoo, args.submissions))
    if args.weights is not None and len(submissions) != 1:
        raise HarnessError(f"--weights: applies to exactly one submission, got {len(submissions)}")
    device = resolve_device(args.device)
    _check_clock(args, device)
    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads: must be at least 1, got {args.threads}")
    limit = 1.0 if reference else protocol.constraints.runtime_ratio_max
    timing = _timing_settings(args, protocol, limit)
    dataset = open_dataset(
        args.data,
        split=args.split,
        scale=protocol.scale,
        allow_partial=args.allow_partial,
        min_hr_side=2 * protocol.border + SSIM_WINDOW,
    )
    config = RunConfig(
        protocol_name=protocol.name,
        protocol_version=protocol.version,
        border=protocol.border,
        device=device,
        flop_counter=protocol.flop_counter,
        timing=timing,
        cache_dir=args.cache_dir,
        force=args.force,
        save_images_dir=save_images_dir,
        weights=args.weights,
        model_zoo=args.model_zoo,
        weights_cache_dir=args.weights_cache,
        trust_weights=args.trust_weights,
        quiet=args.quiet,
        threads=args.threads,
        seed=args.seed,
        log_dir=log_dir,
        workers_per_device=getattr(args, "workers_per_device", DEFAULT_WORKERS_PER_DEVICE),
        cells=_cells(getattr(args, "cells", "fp32")),
        sandbox=_sandbox(args),
    )
    baseline = submissions[0] if reference else resolve_submission(protocol.baseline)
    executor = _executor(args, device, config.sandbox)
    try:
        run = evaluate_run(submissions, dataset, config, baseline=baseline, executor=executor)
    finally:
        executor.close()
    return run if reference else apply_constraints(run, protocol)


def _check_clock(args: argparse.Namespace, device: torch.device) -> None:
    """``--clock cpu`` times CPU runs only: on a GPU the host's CPU time says nothing of the pass.

    The lanes of ``--devices`` are checked here too; a worker refuses the clock on a GPU as well.
    """
    if args.clock != "cpu":
        return
    devices: list[torch.device | str] = [device]
    if args.devices is not None:
        devices += [name.strip() for name in args.devices.split(",") if name.strip()]
    for lane in devices:
        timer_method(lane, "cpu")  # a HarnessError naming the device when it is not the CPU


def _sandbox(args: argparse.Namespace) -> sandbox.Sandbox:
    """--sandbox, probed once; an executor that does not sandbox (in-process) has ``required``
    refused."""
    if not EXECUTORS[args.executor].sandboxes and args.sandbox != "off":
        reason = f"the {args.executor} executor does not sandbox its workers"
        if args.sandbox == "required":
            raise HarnessError(f"--sandbox required: {reason}")
        print(f"warning: workers run without a sandbox: {reason}", file=sys.stderr)
        return sandbox.Sandbox(enabled=False, reason=reason)
    return sandbox.decide(args.sandbox)


def _executor(args: argparse.Namespace, device: torch.device, sandboxed: sandbox.Sandbox) -> Executor:
    """The lanes of the run: --devices of this machine, or --ray-workers lanes of a Ray cluster."""
    if args.executor == "ray":
        if args.devices is not None:
            raise HarnessError("--devices: applies to the local executor; with Ray, give --ray-workers N")
        if args.ray_workers is not None and args.ray_workers < 1:
            raise HarnessError(f"--ray-workers: must be at least 1, got {args.ray_workers}")
    else:
        for flag in ("ray_address", "ray_workers"):
            if getattr(args, flag) is not None:
                raise HarnessError(f"--{flag.replace('_', '-')}: applies to --executor ray")
    devices = [device]
    if args.devices is not None:
        devices = [resolve_device(name.strip()) for name in args.devices.split(",") if name.strip()]
        if not devices or {d.type for d in devices} != {device.type}:
            raise HarnessError(
                f"--devices {args.devices}: give devices of one kind, like --device ({device.type})"
            )
    settings = ExecutorSettings(
        devices,
        sandbox=sandboxed,
        threads=worker_threads(args.threads, device),
        ray_address=args.ray_address,
        ray_workers=args.ray_workers,
    )
    return make_executor(args.executor, settings)


def default_run_dir() -> Path:
    """results/runs/<UTC time>: each evaluation keeps its own folder."""
    return Path("results/runs") / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def write_run(run: dict[str, Any], out_dir: Path, json_path: Path | None) -> Path:
    """Write results.json into ``out_dir`` (and the same document to ``json_path``), atomically."""
    results_path = out_dir / "results.json"
    write_json_atomic(results_path, run)
    if json_path is not None:
        write_json_atomic(json_path, run)
    return results_path


def leaderboard_of(runs: list[RunFile], *, style: str, published: bool) -> Leaderboard:
    """The leaderboard of ``runs`` in ``style``; with ``published``, the published rows and their corrections."""
    board = build_leaderboard(runs, style=style, published_dir=PUBLISHED_DIR if published else None)
    if published and style == "ntire2022":
        board = annotate_published(board, [(item.team, item.describe()) for item in compare_published()])
    return board

"""One training stage: checks everything up front, then trains, validates, logs and checkpoints.

:func:`prepare` does every check that can fail on bad input (init weights, data, patch size,
validation set, an existing run in the output folder) before any training step, so a wrong
config costs seconds, not a night. :func:`train` then runs the iterations.
"""

from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from harness.atomic import write_text_atomic
from harness.errors import HarnessError
from harness.timing import resolve_device
from harness.training import distributed
from harness.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from harness.training.config import OptimConfig, TrainConfig
from harness.training.data import (
    IterationSampler,
    PatchDataset,
    TrainImage,
    check_patch_fits,
    load_training_images,
    training_dataset,
)
from harness.training.distributed import DistContext
from harness.training.model import build_training_model, collapse_to_imdn, init_from_imdn_state_dict

SCALE = 4
INPUT_RANGE = 1.0  # the released IMDN weights expect inputs in [0, 1]
LOG_COLUMNS = ("kind", "iteration", "loss", "lr", "iters_per_s", "elapsed_s", "psnr_rgb", "psnr_y")


def learning_rate(optim: OptimConfig, iteration: int) -> float:
    """The rate used for the step that starts at ``iteration`` (0-based), a pure function of it."""
    if optim.schedule == "cosine":
        progress = min(iteration / optim.iterations, 1.0)
        return optim.min_lr + 0.5 * (optim.lr - optim.min_lr) * (1.0 + math.cos(math.pi * progress))
    passed = sum(1 for milestone in optim.milestones if iteration >= milestone)
    return optim.lr * optim.gamma**passed


def training_device(name: str, ctx: DistContext) -> torch.device:
    """The config's device; under torchrun each process takes the GPU of its local rank."""
    device = resolve_device(name)
    return torch.device("cuda", ctx.local_rank) if device.type == "cuda" and ctx.enabled else device


@dataclass
class Prepared:
    """Everything a stage needs, loaded and checked; nothing has been trained yet."""

    config: TrainConfig
    source: str
    ctx: DistContext
    device: torch.device
    output_dir: Path
    images: list[TrainImage]
    val_images: list[tuple[str, np.ndarray, np.ndarray]]
    model: nn.Module
    resume_state: dict[str, Any] | None
    data_description: dict[str, Any] = field(default_factory=dict)


def _open(spec: str, split: str | None, cache_dir: Path, what: str, source: str) -> Any:
    from harness.data import open_dataset

    try:
        return open_dataset(spec, split=split, scale=SCALE, cache_dir=cache_dir)
    except HarnessError as error:
        raise HarnessError(f"{source}: {what} {spec!r}: {error}") from None


def prepare(config: TrainConfig, *, source: str, resume: bool, ctx: DistContext | None = None) -> Prepared:
    """Check and load everything a stage needs; raise HarnessError before any training on bad input."""
    ctx = ctx or DistContext()
    device = training_device(config.device, ctx)
    output_dir = Path(config.output_dir)
    last = output_dir / "last.pth"
    resume_state = None
    if resume and last.is_file():
        resume_state = load_checkpoint(last)
        changed = _changed_keys(resume_state["config"], config.to_dict())
        if changed:
            raise HarnessError(
                f"--resume: {source} differs from the config {last} was trained with: {', '.join(changed)}"
            )
    elif not resume and last.exists():
        raise HarnessError(
            f"{output_dir} already holds a run; pass --resume to continue it, or remove the folder to restart"
        )

    torch.manual_seed(config.seed)
    model = build_training_model(config.model, source=source)
    if config.model.init_checkpoint is not None:
        init = Path(config.model.init_checkpoint)
        if not init.is_file():
            raise HarnessError(
                f"{source}: model.init_checkpoint {init} does not exist (train the previous stage first)"
            )
        payload = load_checkpoint(init)
        shape_keys = ("blocks", "expansion", "expanded")
        changed = _changed_keys(
            {k: payload["config"]["model"].get(k) for k in shape_keys},
            {k: config.to_dict()["model"][k] for k in shape_keys},
            "model.",
        )
        if changed:
            raise HarnessError(f"{source}: {', '.join(changed)} differ from those {init} was trained with")
        model.load_state_dict(payload["model"])
    else:
        init = Path(str(config.model.init_weights))
        if not init.is_file():
            raise HarnessError(
                f"{source}: model.init_weights {init} does not exist (make it with `esr prune`)"
            )
        state = torch.load(init, map_location="cpu", weights_only=True)
        init_from_imdn_state_dict(model, state, source=str(init))

    cache_dir = Path(config.data.cache_dir)
    try:
        train_name, train_set = training_dataset(config.data.train, scale=SCALE, cache_dir=cache_dir)
    except HarnessError as error:
        raise HarnessError(f"{source}: data.train {config.data.train!r}: {error}") from None
    images = load_training_images(train_set, cache=config.data.cache, cache_dir=cache_dir)
    check_patch_fits(images, config.data.patch_size, source=source)
    val_images: list[tuple[str, np.ndarray, np.ndarray]] = []
    if ctx.is_main:
        val_set = _open(config.val.dataset, config.val.split, cache_dir, "val.dataset", source)
        for name, lr, hr in val_set:
            if hr is None:
                raise HarnessError(f"{source}: val.dataset {config.val.dataset!r} has no HR image for {name}")
            val_images.append((name, lr, hr))
            if config.val.max_images is not None and len(val_images) >= config.val.max_images:
                break
    return Prepared(
        config=config,
        source=source,
        ctx=ctx,
        device=device,
        output_dir=output_dir,
        images=images,
        val_images=val_images,
        model=model,
        resume_state=resume_state,
        data_description={"train": train_name, "num_images": len(images)},
    )


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


@torch.no_grad()
def validate(
    model: nn.Module, images: list[tuple[str, np.ndarray, np.ndarray]], device: torch.device
) -> dict:
    """Mean fidelity of the collapsed (deployed) network, measured as the evaluation measures it."""
    from harness.metrics import score_output, to_tensor

    collapsed = collapse_to_imdn(model).to(device).eval()
    totals = {"psnr_rgb": 0.0, "psnr_y": 0.0}
    for _name, lr, hr in images:
        out = collapsed(to_tensor(lr, INPUT_RANGE).to(device))
        _, scores = score_output(out, hr, input_range=INPUT_RANGE, border=SCALE, keep_pixels=False)
        for key in totals:
            totals[key] += scores[key]
    return {key: value / len(images) for key, value in totals.items()}


class _CsvLog:
    """The CSV log of logged steps and validations; on resume, rows after the checkpoint are dropped."""

    def __init__(self, path: Path, *, keep_until: int | None) -> None:
        self.path = path
        if keep_until is None or not path.exists():
            write_text_atomic(path, ",".join(LOG_COLUMNS) + "\n")
        else:
            with path.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["iteration"]) <= keep_until]
            lines = [",".join(LOG_COLUMNS)] + [",".join(row[c] for c in LOG_COLUMNS) for row in rows]
            write_text_atomic(path, "\n".join(lines) + "\n")

    def write(self, **row: Any) -> None:
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow(["" if row.get(c) is None else row[c] for c in LOG_COLUMNS])


@dataclass(frozen=True)
class TrainResult:
    iterations: int
    losses: list[float]  # every step's loss on this process (for tests and summaries)
    best: dict[str, Any]
    model: nn.Module


def train(prepared: Prepared, *, show_progress: bool = True, stop_at: int | None = None) -> TrainResult:
    """Run the stage from the start or from the resumed checkpoint to ``optim.iterations``.

    ``stop_at`` ends this session after that iteration with a checkpoint, as a preempted or
    time-limited job would; ``--resume`` later continues exactly where it stopped.
    """
    config, ctx, device = prepared.config, prepared.ctx, prepared.device
    optim_cfg = config.optim
    model = prepared.model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=optim_cfg.lr, betas=optim_cfg.betas, weight_decay=optim_cfg.weight_decay
    )
    start, best, window = 0, {"psnr_rgb": -math.inf, "psnr_y": -math.inf, "iteration": 0}, [0.0, 0]
    if prepared.resume_state is not None:
        state = prepared.resume_state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best, window = state["iteration"], dict(state["best"]), list(state["log_window"])
        set_rng_state(state["rng"])
    else:
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)

    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    distributed.init_process_group(ctx, device)
    net: nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    dataset = PatchDataset(
        prepared.images,
        patch_size=config.data.patch_size,
        scale=SCALE,
        augment=config.data.augment,
        seed=config.seed,
    )
    sampler = IterationSampler(
        batch_size=config.data.batch_size, rank=ctx.rank, world_size=ctx.world_size, start_iteration=start
    )
    loader = DataLoader(
        dataset,
        batch_size=config.data.batch_size,
        sampler=sampler,
        num_workers=config.data.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if config.data.workers > 0 else None,
    )
    log = _CsvLog(prepared.output_dir / "log.csv", keep_until=start) if ctx.is_main else None
    use_bf16 = optim_cfg.bf16 and device.type == "cuda"
    losses: list[float] = []
    progress = None
    if ctx.is_main and show_progress:
        from tqdm import tqdm

        progress = tqdm(total=optim_cfg.iterations, initial=start, desc=config.name, dynamic_ncols=True)
    began, began_iteration = time.perf_counter(), start
    iteration = start
    end = optim_cfg.iterations if stop_at is None else min(stop_at, optim_cfg.iterations)
    batches = iter(loader)
    try:
        while iteration < end:
            lr_batch, hr_batch = next(batches)
            lr_batch = lr_batch.to(device, non_blocking=True)
            hr_batch = hr_batch.to(device, non_blocking=True)
            rate = learning_rate(optim_cfg, iteration)
            for group in optimizer.param_groups:
                group["lr"] = rate
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                output = net(lr_batch)
            loss = nn.functional.l1_loss(output.float(), hr_batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if optim_cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), optim_cfg.grad_clip)
            optimizer.step()
            iteration += 1
            loss_value = float(loss.detach())
            losses.append(loss_value)
            window[0] += loss_value
            window[1] += 1
            elapsed = time.perf_counter() - began
            speed = (iteration - began_iteration) / elapsed if elapsed > 0 else 0.0
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{rate:.2e}")
            if iteration % config.log_every == 0 or iteration == optim_cfg.iterations:
                mean_loss = distributed.mean_over_ranks(ctx, window[0] / window[1], device)
                if log is not None:
                    log.write(
                        kind="step",
                        iteration=iteration,
                        loss=f"{mean_loss:.6f}",
                        lr=f"{rate:.6g}",
                        iters_per_s=f"{speed:.3f}",
                        elapsed_s=f"{elapsed:.1f}",
                    )
                window = [0.0, 0]
            if iteration % config.val.every == 0 or iteration in (end, optim_cfg.iterations):
                best = _validate_and_save(prepared, model, optimizer, iteration, best, window, log, elapsed)
    finally:
        if progress is not None:
            progress.close()
        distributed.destroy_process_group(ctx)
    return TrainResult(iterations=iteration, losses=losses, best=best, model=model)


def _validate_and_save(
    prepared: Prepared,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    best: dict[str, Any],
    window: list,
    log: _CsvLog | None,
    elapsed: float,
) -> dict[str, Any]:
    """Rank 0 validates the collapsed model and writes last.pth (and best.pth when it improved)."""
    ctx = prepared.ctx
    if ctx.is_main:
        scores = validate(model, prepared.val_images, prepared.device)
        model.train()
        assert log is not None
        log.write(
            kind="val",
            iteration=iteration,
            elapsed_s=f"{elapsed:.1f}",
            psnr_rgb=f"{scores['psnr_rgb']:.4f}",
            psnr_y=f"{scores['psnr_y']:.4f}",
        )
        improved = scores["psnr_rgb"] > best["psnr_rgb"]
        if improved:
            best = {**scores, "iteration": iteration}
        payload = {
            "config": prepared.config.to_dict(),
            "iteration": iteration,
            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(),
            "best": best,
            "log_window": list(window),
            "val": scores,
            "data": prepared.data_description,
        }
        save_checkpoint(prepared.output_dir / "last.pth", payload)
        if improved:
            save_checkpoint(prepared.output_dir / "best.pth", payload)
    distributed.barrier(ctx)
    return best

"""Training: config validation, patches, schedule, a tiny two-stage run, resume, collapse and export."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.training.config import OptimConfig, config_from_dict, load_config
from harness.training.data import IterationSampler, PatchDataset, TrainImage
from harness.training.loop import learning_rate

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Configuration


def _raw(tmp_path: Path, **sections: dict) -> dict:
    raw = {"name": "t", "output_dir": str(tmp_path / "run"), "model": {"init_weights": "x.pth"}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


@pytest.mark.parametrize("path", ["configs/clb_imdn_stage1.yaml", "configs/clb_imdn_stage2.yaml"])
def test_shipped_configs_load(path: str) -> None:
    config = load_config(REPO / path, data_override="/data/DIV2K")
    assert config.data.train == "/data/DIV2K"
    assert config.data.patch_size == (64 if "stage1" in path else 160)


def test_stage2_starts_from_stage1_best() -> None:
    stage1 = load_config(REPO / "configs/clb_imdn_stage1.yaml")
    stage2 = load_config(REPO / "configs/clb_imdn_stage2.yaml")
    assert stage2.model.init_checkpoint == f"{stage1.output_dir}/best.pth"
    # The Makefile collapses stage 2's best checkpoint.
    assert f"{stage2.output_dir}/best.pth" in (REPO / "Makefile").read_text()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optim": {"iteration": 10}}, "unknown key optim.iteration (did you mean 'iterations'?)"),
        ({"data": {"patch_size": "big"}}, "data.patch_size: expected an integer"),
        ({"model": {"collapse_mode": "lazy"}}, "model.collapse_mode: 'lazy' is not one of explicit, online"),
        ({"optim": {"schedule": "multistep"}}, "optim.milestones: the multistep schedule needs at least one"),
        ({"model": {"init_checkpoint": "a.pth"}}, "set exactly one of init_weights"),
        ({"data": {"batch_size": 0}}, "data.batch_size: must be at least 1"),
    ],
)
def test_bad_config_values_are_named(tmp_path: Path, override: dict, message: str) -> None:
    with pytest.raises(HarnessError) as info:
        config_from_dict(_raw(tmp_path, **override), source="cfg.yaml")
    assert str(info.value).startswith("cfg.yaml: ")
    assert message in str(info.value)


def test_bad_yaml_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(HarnessError, match="broken.yaml: not valid YAML"):
        load_config(path)
    with pytest.raises(HarnessError, match="missing.yaml: training config not found"):
        load_config(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule, checked against the textbook formulas written out here


def test_cosine_schedule_endpoints_and_midpoint() -> None:
    optim = OptimConfig(iterations=100, lr=1e-3, min_lr=1e-5, schedule="cosine")
    assert learning_rate(optim, 0) == pytest.approx(1e-3)
    assert learning_rate(optim, 50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(optim, 25) == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 4)) / 2)
    assert learning_rate(optim, 100) == pytest.approx(1e-5)


def test_multistep_schedule() -> None:
    optim = OptimConfig(iterations=100, lr=1.0, schedule="multistep", milestones=(10, 20), gamma=0.5)
    assert [learning_rate(optim, i) for i in (0, 9, 10, 19, 20, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


# ---------------------------------------------------------------------------------------------
# Patches and sampling


def _blocky_image(name: str, height: int, width: int, seed: int) -> TrainImage:
    """An HR image made of 4x4 blocks of its LR pixels: every aligned crop satisfies HR = repeat(LR)."""
    lr = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return TrainImage(name, lr, np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))


def test_patches_are_aligned_after_flips_and_rotations() -> None:
    images = [_blocky_image("a", 20, 30, 0), _blocky_image("b", 25, 17, 1)]
    dataset = PatchDataset(images, patch_size=12, scale=4, augment=True, seed=3)
    seen_orientations = set()
    for sample in range(40):
        lr, hr = dataset[sample]
        assert lr.shape == (3, 12, 12) and hr.shape == (3, 48, 48)
        expected = lr.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
        assert torch.equal(hr, expected)
        seen_orientations.add(tuple(lr[0, 0, :2].tolist()))
    assert float(lr.min()) >= 0.0 and float(lr.max()) <= 1.0
    again = PatchDataset(images, patch_size=12, scale=4, augment=True, seed=3)
    assert torch.equal(again[7][0], dataset[7][0])  # a pure function of (seed, sample)


def test_every_epoch_visits_every_image_once() -> None:
    images = [_blocky_image(str(i), 8, 8, i) for i in range(5)]
    dataset = PatchDataset(images, patch_size=8, scale=4, augment=False, seed=0)
    for epoch in range(3):
        firsts = {tuple(dataset[epoch * 5 + k][0][:, 0, 0].tolist()) for k in range(5)}
        assert len(firsts) == 5


def test_sampler_splits_ranks_and_resumes_mid_stream() -> None:
    def take(sampler: IterationSampler, n: int) -> list[int]:
        iterator = iter(sampler)
        return [next(iterator) for _ in range(n)]

    rank0 = take(IterationSampler(batch_size=3, rank=0, world_size=2), 9)
    rank1 = take(IterationSampler(batch_size=3, rank=1, world_size=2), 9)
    assert not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == list(range(18))
    resumed = take(IterationSampler(batch_size=3, rank=0, world_size=2, start_iteration=2), 3)
    assert resumed == rank0[6:9]

"""Training: config validation, patches, schedule, a tiny two-stage run, resume, collapse and export."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

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
        ({"optim": {"iteration": 10}}, "optim.iteration: unknown key (did you mean 'iterations'?)"),
        ({"data": {"patch_size": "big"}}, "data.patch_size: must be an integer, got 'big'"),
        (
            {"model": {"collapse_mode": "lazy"}},
            "model.collapse_mode: must be one of explicit, online, got 'lazy'",
        ),
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
    with pytest.raises(HarnessError, match="broken.yaml: line [0-9]+: invalid YAML"):
        load_config(path)
    with pytest.raises(HarnessError, match="missing.yaml: training config not found"):
        load_config(tmp_path / "missing.yaml")


def test_set_overrides_nested_keys_and_is_validated_like_the_file() -> None:
    config = load_config(
        REPO / "configs/clb_imdn_stage1.yaml",
        overrides=["optim.iterations=20", "optim.betas=[0.8, 0.9]", "optim.bf16=true", "val.max_images=2"],
        data_override="samples",
    )
    assert (config.optim.iterations, config.optim.betas, config.optim.bf16) == (20, (0.8, 0.9), True)
    assert (config.val.max_images, config.data.train) == (2, "samples")
    # The file's other values are kept.
    assert config.data.patch_size == 64 and config.optim.lr == 5e-4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.iterations", "--set 'optim.iterations': expected KEY=VALUE"),
        ("optim..lr=1", "expected KEY=VALUE with a dotted key"),
        (
            "optim.iteratons=5",
            "clb_imdn_stage1.yaml: optim.iteratons: unknown key (did you mean 'iterations'?)",
        ),
        ("optim.iterations=many", "clb_imdn_stage1.yaml: optim.iterations: must be an integer, got 'many'"),
        ("seed.value=1", "clb_imdn_stage1.yaml: seed: must be a mapping, got int"),
        ("optim.betas=[0.9", "--set 'optim.betas=[0.9': the value is not valid YAML"),
    ],
)
def test_bad_set_overrides_are_named(override: str, message: str) -> None:
    with pytest.raises(HarnessError) as info:
        load_config(REPO / "configs/clb_imdn_stage1.yaml", overrides=[override])
    assert message in str(info.value)


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


# ---------------------------------------------------------------------------------------------
# Stages end to end (in-process CLI), on the built-in `samples` images


@pytest.fixture(autouse=True)
def _one_thread():
    """These runs are tiny; one thread avoids OpenMP oversubscription on a shared 2-core runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _stage(tmp_path: Path, name: str, *, init: dict, **sections: dict) -> dict:
    raw = {
        "name": name,
        "output_dir": str(tmp_path / name),
        "seed": 0,
        "device": "cpu",
        "log_every": 1,
        "data": {"train": "samples", "patch_size": 12, "batch_size": 2, "workers": 0,
                 "cache_dir": str(tmp_path / "cache")},
        "model": {"expansion": 2, **init},
        "optim": {"iterations": 3, "lr": 2.0e-4},
        "val": {"dataset": "samples", "every": 3, "max_images": 1},
    }  # fmt: skip
    for key, value in sections.items():
        raw[key] = {**raw[key], **value}
    return raw


def _random_imdn_weights(path: Path, seed: int = 0) -> Path:
    """A randomly initialised plain IMDN(nb=7): an init far from a solution, so the loss must fall."""
    from harness.models.imdn import IMDN

    torch.manual_seed(seed)
    torch.save(IMDN(nb=7).state_dict(), path)
    return path


def _esr(*argv: str) -> int:
    from harness.commands import run

    return run(list(argv))


def test_two_stages_collapse_and_evaluate(tmp_path: Path, model_zoo_dir: Path) -> None:
    from harness.metrics import fidelity, to_tensor, to_uint8
    from harness.models.imdn import IMDN
    from harness.submissions import load_model, resolve_submission
    from harness.training.checkpoint import load_checkpoint
    from harness.training.config import ModelConfig
    from harness.training.loop import prepare
    from harness.training.model import build_training_model

    init = tmp_path / "pruned.pth"
    prune = ["prune", "--blocks", "7", "--out", str(init), "--crop", "24", "--model-zoo", str(model_zoo_dir)]
    assert _esr(*prune, "--quiet") == 0
    stage1_raw = _stage(tmp_path, "s1", init={"init_weights": str(init)})
    # Before any step, the expanded training form computes exactly the pruned IMDN.
    start = prepare(config_from_dict(stage1_raw), source="s1", resume=False).model.eval()
    pruned = IMDN(nb=7)
    pruned.load_state_dict(torch.load(init, weights_only=True), strict=True)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(start(x), pruned(x), rtol=1e-4, atol=1e-5)
    stage1 = _write_config(tmp_path / "s1.yaml", stage1_raw)
    assert _esr("train", "--config", str(stage1), "--no-progress") == 0
    best1 = tmp_path / "s1" / "best.pth"
    stage2_raw = _stage(
        tmp_path,
        "s2",
        init={"init_checkpoint": str(best1)},
        data={"patch_size": 16, "workers": 1},
        optim={"iterations": 2},
    )
    stage2_raw["val"]["every"] = 2
    stage2 = _write_config(tmp_path / "s2.yaml", stage2_raw)
    wider = {**stage2_raw, "model": {**stage2_raw["model"], "expansion": 3}}
    with pytest.raises(HarnessError, match="model.expansion differ from those .*best.pth was trained with"):
        prepare(config_from_dict(wider), source="s2", resume=False)
    assert _esr("train", "--config", str(stage2), "--no-progress") == 0
    log = (tmp_path / "s2" / "log.csv").read_text().splitlines()
    assert log[0].startswith("kind,iteration,loss,lr") and sum(line.startswith("val,") for line in log) == 1

    weights = tmp_path / "export" / "mine.pth"
    assert _esr("collapse", str(tmp_path / "s2" / "best.pth"), "--out", str(weights)) == 0
    team26 = torch.load(model_zoo_dir / "team26_imdn_nb7.pth", map_location="cpu", weights_only=True)
    collapsed = torch.load(weights, map_location="cpu", weights_only=True)
    assert list(collapsed) == list(team26)
    assert all(collapsed[k].shape == team26[k].shape for k in team26)

    # The collapsed network computes what the training form computes.
    checkpoint = load_checkpoint(tmp_path / "s2" / "best.pth")
    training_form = build_training_model(ModelConfig(expansion=2), collapse_mode="explicit")
    training_form.load_state_dict(checkpoint["model"])
    plain = IMDN(nb=7)
    plain.load_state_dict(collapsed, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), training_form(x), rtol=1e-4, atol=1e-5)

    # The written submission loads through the harness and scores what validation reported.
    submission = resolve_submission(str(weights.parent))
    loaded = load_model(submission)
    from harness.data import open_dataset

    name, lr, hr = next(iter(open_dataset("samples")))
    with torch.no_grad():
        sr = to_uint8(loaded.model(to_tensor(lr, submission.input_range)), submission.input_range)
    assert fidelity(sr, hr, border=4)["psnr_rgb"] == pytest.approx(checkpoint["val"]["psnr_rgb"], abs=1e-9)
    assert loaded.weights_sha256 == submission.weights.sha256


def test_training_loss_decreases(tmp_path: Path) -> None:
    from harness.training.loop import prepare, train

    init = _random_imdn_weights(tmp_path / "random.pth")
    raw = _stage(
        tmp_path, "fall", init={"init_weights": str(init)}, data={"patch_size": 8, "batch_size": 4},
        optim={"iterations": 30, "lr": 2.0e-3}, val={"every": 30},
    )  # fmt: skip
    result = train(prepare(config_from_dict(raw), source="test", resume=False), show_progress=False)
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last < 0.6 * first, (first, last)


def test_resume_continues_bit_for_bit(tmp_path: Path) -> None:
    from harness.training.checkpoint import load_checkpoint
    from harness.training.loop import prepare, train

    init = _random_imdn_weights(tmp_path / "random.pth")

    def config(name: str):
        raw = _stage(
            tmp_path, name, init={"init_weights": str(init)}, data={"workers": 1}, optim={"iterations": 4}
        )
        raw["val"]["every"] = 4
        return config_from_dict(raw)

    straight = train(prepare(config("straight"), source="a", resume=False), show_progress=False)
    first = train(prepare(config("split"), source="b", resume=False), show_progress=False, stop_at=2)
    assert first.iterations == 2 and (tmp_path / "split" / "last.pth").is_file()
    with pytest.raises(HarnessError, match="already holds a run; pass --resume"):
        prepare(config("split"), source="b", resume=False)
    second = train(prepare(config("split"), source="b", resume=True), show_progress=False)
    assert second.iterations == 4
    assert first.losses + second.losses == straight.losses
    a = load_checkpoint(tmp_path / "straight" / "last.pth")
    b = load_checkpoint(tmp_path / "split" / "last.pth")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for index, state in a["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], b["optimizer"]["state"][index]["exp_avg_sq"])

    def steps(run: str) -> list[list[str]]:  # kind, iteration, loss, lr of the logged steps
        lines = (tmp_path / run / "log.csv").read_text().splitlines()
        return [line.split(",")[:4] for line in lines if line.startswith("step,")]

    assert steps("straight") == steps("split") and len(steps("straight")) == 4

    # A finished run resumes to nothing more; a changed config is refused with the changed keys.
    again = train(prepare(config("split"), source="b", resume=True), show_progress=False)
    assert again.iterations == 4 and again.losses == []
    changed = _stage(
        tmp_path, "split", init={"init_weights": str(init)}, data={"workers": 1}, optim={"lr": 1.0}
    )
    with pytest.raises(
        HarnessError, match="differs from the config .* optim.iterations, optim.lr, val.every$"
    ):
        prepare(config_from_dict(changed), source="b", resume=True)


# ---------------------------------------------------------------------------------------------
# Bad input is refused before any training step


def _fails_before_training(tmp_path: Path, raw: dict, message: str, capsys: pytest.CaptureFixture) -> None:
    path = _write_config(tmp_path / "bad.yaml", raw)
    assert _esr("train", "--config", str(path), "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("esr: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not Path(raw["output_dir"]).exists()


def test_unknown_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = _stage(tmp_path, "bad", init={"init_weights": "x.pth"}, optim={"learning_rate": 1.0})
    _fails_before_training(tmp_path, raw, "optim.learning_rate: unknown key", capsys)


def test_missing_data_path_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    init = _random_imdn_weights(tmp_path / "random.pth")
    raw = _stage(tmp_path, "bad", init={"init_weights": str(init)}, data={"train": str(tmp_path / "no_such")})
    _fails_before_training(tmp_path, raw, "data.train", capsys)


def test_patch_larger_than_an_image_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    init = _random_imdn_weights(tmp_path / "random.pth")
    raw = _stage(tmp_path, "bad", init={"init_weights": str(init)}, data={"patch_size": 100})
    _fails_before_training(tmp_path, raw, "data.patch_size 100 is larger than training image chelsea", capsys)


def test_stage2_without_stage1_checkpoint_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)  # the shipped config's paths are relative to the working folder
    assert _esr("train", "--config", str(REPO / "configs/clb_imdn_stage2.yaml"), "--no-progress") == 2
    err = capsys.readouterr().err
    assert "model.init_checkpoint results/runs/train/clb_imdn_stage1/best.pth does not exist" in err
    assert not (tmp_path / "results" / "runs").exists()


def _write_div2k(root: Path, *, with_lr: bool) -> list[np.ndarray]:
    from harness.data import write_png
    from harness.imresize import imresize

    rng = np.random.default_rng(0)
    hrs = []
    for n in (1, 2):
        hr = rng.integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
        write_png(root / "DIV2K_train_HR" / f"{n:04d}.png", hr)
        if with_lr:
            write_png(root / "DIV2K_train_LR_bicubic" / "X4" / f"{n:04d}x4.png", imresize(hr, 0.25))
        hrs.append(hr)
    return hrs


@pytest.mark.parametrize("with_lr", [True, False], ids=["hr+lr", "hr-only"])
@pytest.mark.parametrize("cache", ["npy", "memory"])
def test_div2k_train_layouts(tmp_path: Path, with_lr: bool, cache: str) -> None:
    from harness.imresize import imresize
    from harness.training.data import load_training_images, training_dataset

    hrs = _write_div2k(tmp_path / "DIV2K", with_lr=with_lr)
    name, dataset = training_dataset(str(tmp_path / "DIV2K"), scale=4, cache_dir=tmp_path / "cache")
    assert name.startswith("DIV2K train") and [item.name for item in dataset.items] == ["0001", "0002"]
    assert all((item.lr_path is not None) == with_lr for item in dataset.items)
    for _ in range(2):  # the second pass is served from the cache
        images = load_training_images(dataset, cache=cache, cache_dir=tmp_path / "cache")
        for image, hr in zip(images, hrs, strict=True):
            assert np.array_equal(image.hr, hr)
            assert np.array_equal(image.lr, imresize(hr, 0.25))


def test_div2k_lr_folder_missing_an_image_is_named(tmp_path: Path) -> None:
    from harness.training.data import training_dataset

    _write_div2k(tmp_path / "DIV2K", with_lr=True)
    (tmp_path / "DIV2K" / "DIV2K_train_LR_bicubic" / "X4" / "0002x4.png").unlink()
    with pytest.raises(HarnessError, match="0002x4.png: LR image missing"):
        training_dataset(str(tmp_path / "DIV2K"), scale=4, cache_dir=tmp_path / "cache")

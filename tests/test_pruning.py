"""Coarse-grained IMDN pruning: exact block surgery, the greedy criterion, and `esr prune`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.metrics import to_tensor, to_uint8
from harness.models.imdn import IMDN
from harness.models.pruning import (
    CalibrationImage,
    calibration_psnr,
    calibration_set,
    centre_crop_pair,
    count_blocks,
    greedy_prune,
    prune_imdn,
)


def _random_imdn(nb: int, nc: int = 16, seed: int = 0) -> IMDN:
    torch.manual_seed(seed)
    model = IMDN(nc=nc, nb=nb).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)  # larger than default init, so every block changes the output
    return model


def test_pruned_keys_shapes_and_values():
    source = IMDN(nb=8).state_dict()
    pruned = prune_imdn(source, [0, 1, 3, 4, 5, 6, 7])
    target = IMDN(nb=7).state_dict()
    assert list(pruned) == list(target)
    assert all(pruned[k].shape == target[k].shape for k in target)
    assert torch.equal(pruned["model.1.sub.2.conv1.0.weight"], source["model.1.sub.3.conv1.0.weight"])
    assert torch.equal(pruned["model.1.sub.1.conv1x1.bias"], source["model.1.sub.1.conv1x1.bias"])
    assert torch.equal(pruned["model.1.sub.7.weight"], source["model.1.sub.8.weight"])  # body's last conv
    assert torch.equal(pruned["model.2.weight"], source["model.2.weight"])
    assert count_blocks(pruned) == 7


@pytest.mark.parametrize(
    ("blocks", "millions"), [(8, "0.8939"), (7, "0.7905"), (6, "0.6871"), (5, "0.5836"), (4, "0.4802")]
)
def test_pruned_param_counts_match_the_seed_table_1(blocks, millions):
    pruned = prune_imdn(IMDN(nb=8).state_dict(), range(blocks))
    model = IMDN(nb=blocks)
    model.load_state_dict(pruned, strict=True)
    assert f"{sum(v.numel() for v in pruned.values()) / 1e6:.4f}" == millions


def test_pruned_network_is_the_source_with_blocks_skipped():
    source = _random_imdn(nb=4)
    keep = [0, 2]
    pruned = IMDN(nc=16, nb=2).eval()
    pruned.load_state_dict(prune_imdn(source.state_dict(), keep), strict=True)
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        # The source network written out by hand, skipping blocks 1 and 3.
        head = source.model[0](x)
        features = head
        for block in keep:
            features = source.model[1].sub[block](features)
        expected = source.model[3](source.model[2](head + source.model[1].sub[4](features)))
        assert torch.equal(pruned(x), expected)


def _calibration(model: IMDN, count: int = 3, size: int = 12) -> list[CalibrationImage]:
    """Random LR images whose HR is the model's own saved output (PSNR inf for the model itself)."""
    generator = np.random.default_rng(0)
    images = []
    for index in range(count):
        lr = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
        with torch.no_grad():
            hr = to_uint8(model(to_tensor(lr, 1.0)), 1.0)
        images.append(CalibrationImage(f"img{index}", lr, hr))
    return images


def test_greedy_removes_a_block_that_changes_nothing_first():
    model = _random_imdn(nb=4)
    with torch.no_grad():  # block 2 becomes the identity: its residual branch outputs zero
        model.model[1].sub[2].conv1x1.weight.zero_()
        model.model[1].sub[2].conv1x1.bias.zero_()
    images = _calibration(model)
    result = greedy_prune(model.state_dict(), 2, images)
    assert result.removed_blocks[0] == 2
    assert result.baseline_psnr == float("inf") and result.steps[0].psnr == float("inf")
    assert len(result.kept_blocks) == 2 and len(result.steps) == 2
    second = result.steps[1]
    assert set(second.candidates) == {0, 1, 3}
    assert second.psnr == max(second.candidates.values()) < float("inf")
    # The shortcut evaluation gives exactly the PSNR of the pruned network built from its weights.
    for block, value in second.candidates.items():
        keep = [b for b in (0, 1, 3) if b != block]
        assert calibration_psnr(prune_imdn(model.state_dict(), keep), images) == value
    pruned = IMDN(nc=16, nb=2)
    pruned.load_state_dict(result.state_dict, strict=True)
    assert result.as_dict()["removed_blocks"] == list(result.removed_blocks)


def test_centre_crop_keeps_lr_and_hr_aligned():
    hr = np.arange(40 * 48 * 3, dtype=np.uint32).reshape(40, 48, 3)
    lr = hr[::4, ::4]
    lr_crop, hr_crop = centre_crop_pair(lr, hr, 4, 4)
    assert lr_crop.shape == (4, 4, 3) and hr_crop.shape == (16, 16, 3)
    assert np.array_equal(hr_crop[::4, ::4], lr_crop)
    small_lr, small_hr = centre_crop_pair(lr, hr, 100, 4)
    assert small_lr.shape == lr.shape and small_hr.shape == hr.shape


def test_bad_inputs_are_refused():
    state = IMDN(nb=3, nc=8).state_dict()
    with pytest.raises(HarnessError, match="keep_blocks"):
        prune_imdn(state, [0, 3])
    with pytest.raises(HarnessError, match="keep_blocks"):
        prune_imdn(state, [1, 1])
    with pytest.raises(HarnessError, match="not an IMDN"):
        count_blocks({"fea_conv.weight": torch.zeros(1)})
    with pytest.raises(HarnessError, match="between 1 and 3"):
        greedy_prune(state, 4, [])
    lr = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(HarnessError, match="has no HR"):
        calibration_set([("a", lr, None)], crop=None, scale=4)
    with pytest.raises(HarnessError, match="is not x4"):
        calibration_set([("a", lr, np.zeros((8, 8, 3), np.uint8))], crop=None, scale=4)


def test_prune_command_writes_weights_and_record(model_zoo_dir, tmp_path, capsys):
    from harness.commands import run

    out = tmp_path / "imdn_nb7.pth"
    status = run(
        ["prune", "--blocks", "7", "--out", str(out), "--crop", "16", "--model-zoo", str(model_zoo_dir)]
    )
    assert status == 0
    model = IMDN(nb=7)
    model.load_state_dict(torch.load(out, map_location="cpu", weights_only=True), strict=True)
    record = json.loads((tmp_path / "imdn_nb7.json").read_text())
    assert record["blocks"] == 7 and record["source_blocks"] == 8
    assert len(record["removed_blocks"]) == 1 and len(record["steps"]) == 1
    assert sorted(record["kept_blocks"] + record["removed_blocks"]) == list(range(8))
    assert len(record["steps"][0]["candidates"]) == 8
    assert record["calibration"]["name"] == "samples" and record["calibration"]["crop"] == 16
    assert record["model"] == {"module": "harness.models.imdn", "class": "IMDN", "kwargs": {"nb": 7}}
    assert "PSNR before fine-tuning" in capsys.readouterr().out


def test_prune_command_refuses_an_unsupported_block_count(tmp_path):
    from harness.commands import run

    with pytest.raises(SystemExit):
        run(["prune", "--blocks", "3", "--out", str(tmp_path / "x.pth")])

"""The bundled architectures load their released weights strictly and upscale a real image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.models.imdn import IMDN
from harness.models.rfdn import RFDN


def _load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _set5_crop(data_dir: Path, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Top-left crops of Set5's first pair: ``size`` x ``size`` LR and the matching HR (uint8)."""
    folder = data_dir / "Set5" / "image_SRF_4"
    lr_path, hr_path = folder / "img_001_SRF_4_LR.png", folder / "img_001_SRF_4_HR.png"
    if not (lr_path.is_file() and hr_path.is_file()):
        pytest.skip(f"Set5 pair img_001 is missing under {folder}")
    lr = np.array(Image.open(lr_path).convert("RGB"))[:size, :size]
    hr = np.array(Image.open(hr_path).convert("RGB"))[: 4 * size, : 4 * size]
    return lr, hr


def _upscale(model: torch.nn.Module, lr: np.ndarray, input_range: float) -> np.ndarray:
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255.0 * input_range
    with torch.no_grad():
        y = model.eval()(x)
    return (y[0].clamp(0, input_range) * 255.0 / input_range).round().byte().permute(1, 2, 0).numpy()


def _mse(a: np.ndarray, b: np.ndarray, border: int = 4) -> float:
    diff = a[border:-border, border:-border].astype(np.float64) - b[border:-border, border:-border]
    return float(np.mean(diff**2))


@pytest.mark.parametrize(
    ("file", "build", "input_range"),
    [
        ("imdn_baseline.pth", lambda: IMDN(nb=8), 1.0),
        ("team26_imdn_nb7.pth", lambda: IMDN(nb=7), 1.0),
        ("rfdn_baseline.pth", RFDN, 255.0),
    ],
)
def test_released_weights_load_strictly_and_upscale(model_zoo_dir, data_dir, file, build, input_range):
    model = build()
    state = _load(model_zoo_dir / file)
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)
    lr, hr = _set5_crop(data_dir)
    sr = _upscale(model, lr, input_range)
    assert sr.shape == hr.shape
    # Correct weights in the right places restore detail: the error to HR is far below that of a
    # nearest-neighbour blow-up (a wrong wiring or input range gives a much larger error).
    nearest = lr.repeat(4, axis=0).repeat(4, axis=1)
    assert _mse(sr, hr) < 0.5 * _mse(nearest, hr)


def test_imdn_forward_keeps_the_scale_on_odd_sizes():
    model = IMDN(nb=2)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 13, 7))
    assert out.shape == (1, 3, 52, 28)


def test_rfdn_forward_keeps_the_scale():
    model = RFDN(num_modules=2)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 24) * 255)
    assert out.shape == (1, 3, 128, 96)


@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_bicubic_is_the_matlab_resize_of_the_saved_image(data_dir, input_range):
    from harness.imresize import imresize
    from harness.models.bicubic import Bicubic

    lr, hr = _set5_crop(data_dir, size=40)
    sr = _upscale(Bicubic(scale=4, input_range=input_range), lr, input_range)
    assert sr.shape == hr.shape
    assert np.array_equal(sr, imresize(lr, 4))
    nearest = lr.repeat(4, axis=0).repeat(4, axis=1)
    assert _mse(sr, hr) < _mse(nearest, hr)


def test_bicubic_has_no_parameters_and_costs_nothing():
    from harness.complexity import Complexity, count_complexity
    from harness.models.bicubic import Bicubic

    model = Bicubic()
    assert list(model.parameters()) == []
    assert count_complexity(model, (3, 16, 12)) == Complexity(0, 0, 0, 0)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 5, 7)).shape == (2, 3, 20, 28)

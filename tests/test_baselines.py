"""The bundled 2024-2026 baselines (rlfn, efdn, span): our architectures against the editions' own.

The architectures in ``harness/models`` are written from the papers and the released checkpoints'
key names. With an edition's checkout in ``ESR_NTIRE2024_ZOO`` (and 2025, 2026), the released
weights load into ours strictly and ours computes what the official class computes; without a
checkout these tests skip with the reason.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.complexity import complexity_record
from harness.submissions import build_model, load_model, resolve_submission
from tests.conftest import edition_checkout

# name -> (edition, official module, class, constructor arguments as test_demo.py passes them)
OFFICIAL = {
    "rlfn": ("ntire2024", "models.team00_RLFN", "RLFN_Prune", {}),
    "efdn": ("ntire2025", "models.team00_EFDN", "EFDN", {}),
    "span": ("ntire2026", "models.team00_SPAN", "SPAN", {"num_in_ch": 3, "num_out_ch": 3, "upscale": 4, "feature_channels": 28}),
}  # fmt: skip


def _official_model(
    root: Path, module: str, class_name: str, kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> nn.Module:
    """The edition's own class with its own weights. SPAN's constructor moves itself to CUDA and runs
    a warm-up pass there; on a machine without a GPU those two calls are kept on the CPU."""
    sys.path.insert(0, str(root))
    if not torch.cuda.is_available():
        monkeypatch.setattr(nn.Module, "cuda", lambda self, device=None: self)
        monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    model = getattr(importlib.import_module(module), class_name)(**kwargs)
    return model.eval()


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_bundled_baseline_computes_what_the_official_model_computes(
    name: str, checkout_imports: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    edition, module, class_name, kwargs = OFFICIAL[name]
    root = edition_checkout(edition)
    submission = resolve_submission(name)
    ours = load_model(submission, model_zoo=root / "model_zoo", cache_dir=tmp_path, allow_download=False)
    official = _official_model(root, module, class_name, kwargs, monkeypatch)
    weights = torch.load(root / "model_zoo" / submission.weights.file, map_location="cpu", weights_only=True)
    official.load_state_dict(weights, strict=True)
    generator = torch.Generator().manual_seed(0)
    lr = torch.rand(1, 3, 20, 24, generator=generator) * submission.input_range
    with torch.no_grad():
        expected, found = official(lr), ours.model(lr)
    assert found.shape == (1, 3, 80, 96)
    torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-4 * submission.input_range)
    assert sum(p.numel() for p in ours.model.parameters()) == sum(p.numel() for p in official.parameters())


# The released sizes (results.json / README of each edition: params exact, fvcore FLOPs at 3x256x256).
PUBLISHED = {"rlfn": (317_218, 19.67), "efdn": (276_192, 16.70), "span": (150_688, 9.83)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_bundled_baseline_sizes_are_the_published_ones(name: str) -> None:
    params, flops_g = PUBLISHED[name]
    record = complexity_record(build_model(resolve_submission(name)), "fvcore")
    assert record["params"] == params
    assert round(record["flops_fvcore"] / 1e9, 2) == flops_g and not record["flops_lower_bound"]

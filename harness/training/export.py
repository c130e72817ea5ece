"""From a training checkpoint to deployable weights and a submission the harness can evaluate.

The collapsed network is a plain 7-block IMDN, so the weights are written in the released team26
format (the state dict of ``IMDN(nb=7)``), and a ``submission.yaml`` beside them lets
``esr evaluate <folder>`` evaluate the user's own model like any bundled one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from harness.atomic import atomic_path, write_text_atomic
from harness.errors import HarnessError
from harness.submissions import sha256_file
from harness.training.checkpoint import load_checkpoint
from harness.training.config import config_from_dict
from harness.training.model import build_training_model, collapse_to_imdn

MANIFEST_NAME = "submission.yaml"


def collapse_checkpoint(checkpoint: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The IMDN state dict of a checkpoint's collapsed model, and the checkpoint's metadata."""
    payload = load_checkpoint(checkpoint)
    config = config_from_dict(payload["config"], source=f"{checkpoint} (stored config)")
    model = build_training_model(config.model)
    model.load_state_dict(payload["model"])
    imdn = collapse_to_imdn(model)
    state = {key: value.detach().cpu().contiguous() for key, value in imdn.state_dict().items()}
    meta = {
        "name": config.name,
        "iteration": payload["iteration"],
        "val": payload.get("val"),
        "blocks": config.model.blocks,
    }
    return state, meta


def _bundled_model_spec() -> dict[str, Any]:
    """The model section of the bundled ``clb_imdn`` submission, so both evaluate the same class."""
    from harness.submissions import resolve_submission

    spec = resolve_submission("clb_imdn").to_dict()["model"]
    section: dict[str, Any] = {"class": spec["class"]}
    if spec["module"]:
        section["module"] = spec["module"]
    else:
        raise HarnessError(
            "the bundled clb_imdn submission names a model file, not a module; cannot refer to it"
        )
    if spec["kwargs"]:
        section["kwargs"] = spec["kwargs"]
    return section


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, name: str | None = None) -> Path:
    """Write the collapsed weights to ``out`` and ``submission.yaml`` beside them; return the manifest."""
    out = Path(out)
    if out.suffix not in (".pth", ".pt"):
        raise HarnessError(f"--out {out}: the weights file name must end in .pth or .pt")
    state, meta = collapse_checkpoint(checkpoint)
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    digest = sha256_file(out)
    val = meta.get("val") or {}
    description = (
        f"CLB-IMDN trained with `esr train` ({meta['name']}, iteration {meta['iteration']}), collapsed to a "
        f"{meta['blocks']}-block IMDN by `esr collapse`"
        + (f"; validation PSNR {val['psnr_rgb']:.2f} dB during training" if "psnr_rgb" in val else "")
    )
    manifest = {
        "name": name or f"{meta['name']}_collapsed",
        "team": "local",
        "description": description,
        "model": _bundled_model_spec(),
        "weights": {"file": out.name, "sha256": digest},
        "input_range": 1.0,
        "scale": 4,
    }
    manifest_path = out.parent / MANIFEST_NAME
    write_text_atomic(manifest_path, yaml.safe_dump(manifest, sort_keys=False))
    return manifest_path

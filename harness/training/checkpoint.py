"""Training checkpoints: everything needed to continue a run bit-for-bit, written atomically.

A checkpoint holds the training-form weights, the optimizer state, the iteration, the running
loss window and the states of the torch, CUDA, NumPy and Python RNGs. It contains only tensors and
plain Python values, so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.atomic import atomic_path
from harness.errors import HarnessError

FORMAT = "esr-train-checkpoint"
VERSION = 1


def rng_state() -> dict[str, Any]:
    """The state of every RNG a training step could touch."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, key.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus format and version) to ``path``; a crash leaves the old file intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything else by name."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
        raise HarnessError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HarnessError(f"{path}: not an `esr train` checkpoint (no format marker {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise HarnessError(
            f"{path}: checkpoint version {payload.get('version')} is not supported ({VERSION})"
        )
    return payload

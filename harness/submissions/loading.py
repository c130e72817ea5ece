"""Loading weights into a built model: safe unpickling, key selection, strict matching with a report.

Checkpoints are read with ``torch.load(..., weights_only=True)``: a file that needs arbitrary pickle
(it could run code) is refused unless the caller trusts it. Loading is strict (unless the weights
entry says ``strict: false``, as the official script does for some zoo models; a wrong shape is
refused even then); a mismatch is one line listing the first missing, unexpected and wrongly
shaped keys with their counts. A model class
may define ``load_submission_state_dict(state_dict)`` to load differently (the CLB model collapses a
training-form checkpoint that way); otherwise ``load_state_dict(strict=True)`` is used.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import HarnessError
from harness.submissions.building import build_model, run_after_load, summarise_exception
from harness.submissions.manifest import Submission
from harness.submissions.weights import ResolvedWeights, WeightsSource, resolve_weights

_SHOW = 5  # keys shown per kind of mismatch


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run (eval mode, no gradients) and the identities of what it was built from."""

    model: nn.Module
    submission: Submission
    weights_sha256: str | None
    weights_path: Path | None
    weights_source: WeightsSource | None


def load_model(
    submission: Submission,
    *,
    weights: Path | None = None,
    model_zoo: Path | None = None,
    cache_dir: Path | None = None,
    trust_weights: bool = False,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
) -> LoadedModel:
    """Build the submission's model, find and verify its weights, load them strictly, move to ``device``."""
    model = build_model(submission)  # first: a broken model file should not cost a download
    resolved = resolve_weights(
        submission, explicit=weights, model_zoo=model_zoo, cache_dir=cache_dir, allow_download=allow_download
    )
    return load_resolved(submission, resolved, trust_weights=trust_weights, device=device, model=model)


def load_resolved(
    submission: Submission,
    resolved: ResolvedWeights | None,
    *,
    trust_weights: bool = False,
    device: str | torch.device = "cpu",
    model: nn.Module | None = None,
) -> LoadedModel:
    """Build the model (unless given) and load weights already found and verified by ``resolve_weights``.

    The evaluation workers use this: the coordinator resolves and verifies each submission's weights
    once, and the worker process only reads the file it is told.
    """
    model = build_model(submission) if model is None else model
    if resolved is not None:
        checkpoint = read_checkpoint(resolved.path, trust_weights=trust_weights)
        state_dict = select_state_dict(submission, checkpoint, resolved.path)
        apply_state_dict(submission, model, state_dict, resolved.path)
    model = run_after_load(submission, model).to(device).eval()
    model.requires_grad_(False)
    return LoadedModel(
        model=model,
        submission=submission,
        weights_sha256=resolved.sha256 if resolved else None,
        weights_path=resolved.path if resolved else None,
        weights_source=resolved.source if resolved else None,
    )


def read_checkpoint(path: Path, *, trust_weights: bool = False) -> Any:
    """``torch.load`` on CPU; without ``trust_weights`` only tensors and plain containers are accepted."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_weights)
    except pickle.UnpicklingError as error:
        if trust_weights:
            raise HarnessError(f"{path}: cannot read weights: {summarise_exception(error)}") from error
        raise HarnessError(f"{path}: {_explain_refusal(str(error))}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        first_sentence = str(error).strip().split(". ")[0].rstrip(".")
        raise HarnessError(
            f"{path}: cannot read weights: {type(error).__name__}: {first_sentence}"
        ) from error


def _explain_refusal(message: str) -> str:
    """Say why the safe unpickler stopped: a Python object it will not build, or unreadable data."""
    found = re.search(r"GLOBAL (\S+)", message)
    if found:
        return (
            f"refused to load: the checkpoint holds Python objects beyond tensors ({found.group(1)}), and "
            "unpickling them can run arbitrary code; pass --trust-weights if you trust its source"
        )
    lines = [line.strip() for line in message.splitlines()]
    after = lines[next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), len(lines)) :]
    detail = next(
        (line.split("error:")[-1].strip() for line in after if line.split("error:")[-1].strip()), ""
    )
    return (
        f"cannot read weights safely ({detail or 'unpickling failed'}): the file is corrupt or not a PyTorch "
        "checkpoint; if it comes from a trusted source, --trust-weights reads it with full pickle"
    )


def select_state_dict(submission: Submission, checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    """Apply ``weights.state_dict_key`` and ``weights.strip_prefix``; refuse anything but a state dict."""
    spec = submission.weights
    key = spec.state_dict_key if spec else None
    if key is not None:
        if not isinstance(checkpoint, Mapping) or key not in checkpoint:
            holds = _preview(list(checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint)
            raise submission.error("weights.state_dict_key", f"{key!r} not in {path} (it holds: {holds})")
        checkpoint = checkpoint[key]
    if isinstance(checkpoint, nn.Module):
        checkpoint = checkpoint.state_dict()  # a whole pickled model, accepted only with --trust-weights
    is_mapping = isinstance(checkpoint, Mapping)
    if not is_mapping or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        nested = [k for k, v in checkpoint.items() if isinstance(v, Mapping)] if is_mapping else []
        hint = f"; set weights.state_dict_key to one of: {', '.join(map(str, nested))}" if nested else ""
        raise submission.error(
            "weights", f"{path} is not a state dict of tensors ({type(checkpoint).__name__}){hint}"
        )
    prefix = spec.strip_prefix if spec else None
    if prefix:
        return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in checkpoint.items()}
    return dict(checkpoint)


def apply_state_dict(
    submission: Submission, model: nn.Module, state_dict: dict[str, torch.Tensor], path: Path
) -> None:
    """Load strictly, through the model's own hook when it has one; a mismatch is a one-line report."""
    hook = getattr(model, "load_submission_state_dict", None)
    if callable(hook):
        try:
            hook(state_dict)
        except HarnessError:
            raise
        except (RuntimeError, KeyError, ValueError) as error:
            report = mismatch_report(model, state_dict)
            detail = report or " ".join(str(error).split())
            message = f"{path} does not fit {type(model).__name__}: {detail}"
            raise submission.error("weights", message) from error
        return
    report = mismatch_report(model, state_dict)
    strict = submission.weights is None or submission.weights.strict
    if report and (strict or _shapes_differ(model, state_dict)):
        raise submission.error("weights", f"{path} does not fit {type(model).__name__}: {report}")
    model.load_state_dict(state_dict, strict=strict)


def _shapes_differ(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """A non-strict load still refuses a tensor of the wrong shape (torch raises on it)."""
    expected = model.state_dict()
    return any(key in expected and expected[key].shape != value.shape for key, value in state_dict.items())


def mismatch_report(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> str:
    """Missing keys, unexpected keys and shape differences (first few of each, with counts); '' if none."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k} {list(state_dict[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_preview(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_preview(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape difference(s): {_preview(shapes)}")
    prefix = _shared_prefix(missing, unexpected)
    if prefix:
        parts.append(
            f"the checkpoint's keys carry the prefix {prefix!r}: set weights.strip_prefix: {prefix!r}"
        )
    return "; ".join(parts)


def _shared_prefix(missing: list[str], unexpected: list[str]) -> str | None:
    """The prefix (``module.``) whose removal turns the unexpected keys into exactly the missing ones."""
    if not missing or len(missing) != len(unexpected):
        return None
    first = unexpected[0]
    for end in (i + 1 for i, char in enumerate(first) if char == "."):
        prefix = first[:end]
        if all(k.startswith(prefix) for k in unexpected) and {k[end:] for k in unexpected} == set(missing):
            return prefix
    return None


def _preview(items: list[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:_SHOW])
    return shown + (f", ... (+{len(items) - _SHOW} more)" if len(items) > _SHOW else "")

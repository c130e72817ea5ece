"""One forward callable per cell: the same 1x3xHxW LR tensor in, the SR tensor out.

Reduced precision converts a copy of the model (``fp16``, ``bf16``: weights and input cast, output
cast back to fp32), so the figure is what a converted deployment computes rather than autocast's
per-op choices. When a cell cannot run a model, :class:`CellUnavailable` carries the one-line
reason the record shows; the other cells are unaffected.
"""

from __future__ import annotations

import copy
import importlib.util
import io
from collections.abc import Callable

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]

CELL_NAMES = ("fp32", "fp16", "bf16", "compile", "onnxruntime", "tensorrt")
GPU_ONLY_CELLS = frozenset({"fp16", "tensorrt"})


class CellUnavailable(Exception):
    """A cell cannot run this model here; ``str()`` is the one-line reason for the record."""


def parse_cells(text: str) -> tuple[str, ...]:
    """``"fp32,bf16"`` -> ``("fp32", "bf16")``; an unknown or repeated name raises ValueError in one line."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("--cells: empty list; choose from " + ",".join(CELL_NAMES))
    for name in names:
        if name not in CELL_NAMES:
            raise ValueError(f"--cells: unknown cell {name!r}; choose from " + ",".join(CELL_NAMES))
    if len(set(names)) != len(names):
        raise ValueError(f"--cells: repeated cell in {text!r}")
    return names


def reason(exc: BaseException) -> str:
    """Exception class and the first line of its message: the record's ``reason``."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _converted(model: torch.nn.Module, dtype: torch.dtype) -> Forward:
    half = copy.deepcopy(model).to(dtype).eval()

    def forward(lr: torch.Tensor) -> torch.Tensor:
        return half(lr.to(dtype)).float()

    return forward


def _compiled(model: torch.nn.Module) -> Forward:
    return torch.compile(model)


def _onnxruntime(model: torch.nn.Module, example: torch.Tensor) -> Forward:
    import onnxruntime as ort

    buffer = io.BytesIO()
    dims = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model.cpu() if example.device.type == "cpu" else model,
        (example,),
        buffer,
        input_names=["lr"],
        output_names=["sr"],
        dynamic_axes={"lr": dims, "sr": dims},
        dynamo=False,
    )
    providers = ["CUDAExecutionProvider"] if example.is_cuda else ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the threads eager PyTorch is timed with
    session = ort.InferenceSession(buffer.getvalue(), sess_options=options, providers=providers)
    if example.is_cuda and "CUDAExecutionProvider" not in session.get_providers():
        raise CellUnavailable("onnxruntime has no CUDA execution provider here")

    def forward(lr: torch.Tensor) -> torch.Tensor:
        (out,) = session.run(["sr"], {"lr": lr.detach().cpu().numpy()})
        return torch.from_numpy(out).to(lr.device)

    return forward


def _tensorrt(model: torch.nn.Module, example: torch.Tensor) -> Forward:
    if importlib.util.find_spec("torch_tensorrt") is None:
        raise CellUnavailable("needs the torch_tensorrt package (pip install '.[tensorrt]')")
    import torch_tensorrt

    engine = torch_tensorrt.compile(model, ir="dynamo", inputs=[example], enabled_precisions={torch.float32})
    return engine


def build_cell(name: str, model: torch.nn.Module, example: torch.Tensor) -> Forward:
    """The forward callable of cell ``name`` for ``model`` on ``example``'s device.

    ``example`` is a representative LR tensor: the exporters trace it and the first call is made
    with it, so a model that cannot run that way fails here (as :class:`CellUnavailable`), not
    inside the timed loop. ``fp32`` is the model itself, not called, so its first call stays cold.
    """
    if name not in CELL_NAMES:
        raise ValueError(f"unknown cell {name!r}")
    if name in GPU_ONLY_CELLS and example.device.type != "cuda":
        raise CellUnavailable("needs a GPU")
    model = model.eval()
    if name == "fp32":
        return model
    try:
        with torch.no_grad():
            if name == "fp16":
                forward: Forward = _converted(model, torch.float16)
            elif name == "bf16":
                forward = _converted(model, torch.bfloat16)
            elif name == "compile":
                forward = _compiled(model)
            elif name == "onnxruntime":
                forward = _onnxruntime(model, example)
            else:
                forward = _tensorrt(model, example)
            forward(example)
    except CellUnavailable:
        raise
    except Exception as exc:  # any exporter/compiler failure is the cell's reason, not a crash
        raise CellUnavailable(reason(exc)) from exc
    return forward

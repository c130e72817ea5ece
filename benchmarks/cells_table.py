"""Cells on this machine: PSNR/SSIM drop against fp32 eager, and a rough runtime, per model and cell.

Each model is loaded once; every cell is built from it (harness.cells) and run on the built-in
samples. Runtimes are the median of ``--repeats`` untimed-warm calls on the first sample, in
alternation across cells within a repeat, so that machine load affects every cell alike; they are
indicative only (``esr evaluate``'s protocol timing is the figure to rank).

    .venv/bin/python benchmarks/cells_table.py --models clb_imdn,clb_imdn_uncollapsed,imdn_baseline
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from harness.cells import CellUnavailable, build_cell, cell_fidelity, parse_cells
from harness.data.dataset import open_dataset
from harness.metrics import to_tensor
from harness.submissions.loading import load_model
from harness.submissions.registry import resolve_submission


def _row(name: str, cells: tuple[str, ...], zoo: Path, repeats: int) -> list[str]:
    sub = resolve_submission(name)
    model = load_model(sub, model_zoo=zoo, allow_download=False).model
    samples = list(open_dataset("samples", scale=sub.scale))
    inputs = [to_tensor(lr, sub.input_range) for _, lr, _ in samples]
    hrs = [hr for _, _, hr in samples]
    with torch.inference_mode():
        fp32 = [model(x) for x in inputs]
    built: dict[str, object] = {}
    for cell in cells:
        try:
            built[cell] = build_cell(cell, model, inputs[0])
        except CellUnavailable as exc:
            built[cell] = str(exc)
    times: dict[str, list[float]] = {cell: [] for cell, f in built.items() if callable(f)}
    with torch.inference_mode():
        for _ in range(repeats):
            for cell in times:
                start = time.perf_counter()
                built[cell](inputs[0])  # type: ignore[operator]
                times[cell].append((time.perf_counter() - start) * 1000)
    lines = []
    for cell, forward in built.items():
        if not callable(forward):
            lines.append(f"| {name} | {cell} | - | - | - | - | {forward} |")
            continue
        with torch.inference_mode():
            outs = [forward(x).float() for x in inputs]
        f = cell_fidelity(outs, fp32, hrs, input_range=sub.input_range, border=sub.scale)
        ms = statistics.median(times[cell])
        ratio = ms / statistics.median(times["fp32"]) if "fp32" in times else float("nan")
        lines.append(
            f"| {name} | {cell} | {f['psnr']:.3f} | {f['psnr_drop']:+.4f} | {f['ssim_drop']:+.5f} "
            f"| {ms:.1f} ({ratio:.2f}x) | |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="clb_imdn,clb_imdn_uncollapsed,imdn_baseline")
    parser.add_argument("--cells", default="fp32,bf16,compile,onnxruntime,fp16,tensorrt")
    parser.add_argument("--zoo", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cells = parse_cells(args.cells)
    torch.set_num_threads(1)
    print("| model | cell | PSNR | PSNR drop | SSIM drop | ms, first sample (ratio to fp32) | reason |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for line in _row(name, cells, args.zoo, args.repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()

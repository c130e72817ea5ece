"""Cells: a loaded submission's model run another way (precision, compiler, exporter), beside fp32 eager.

The protocols rank fp32 eager PyTorch alone; a cell answers "does the speed and the PSNR survive
deployment?" without touching that figure. :mod:`harness.cells.backends` turns a model into a
forward callable per cell, :mod:`harness.cells.record` holds the per-cell record shape and the
fidelity drop against fp32.
"""

from harness.cells.backends import CELL_NAMES, GPU_ONLY_CELLS, CellUnavailable, build_cell, parse_cells
from harness.cells.record import CellRecord, cell_fidelity, cell_record, unavailable

__all__ = [
    "CELL_NAMES",
    "GPU_ONLY_CELLS",
    "CellRecord",
    "CellUnavailable",
    "build_cell",
    "cell_fidelity",
    "cell_record",
    "parse_cells",
    "unavailable",
]

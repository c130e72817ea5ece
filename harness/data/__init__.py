"""Test datasets: DIV2K and benchmark folders in the layouts people download, HR-only folders,
and the built-in `samples`; MATLAB-exact LR where none is shipped.

Entry point: ``open_dataset(spec, split=..., scale=..., allow_partial=..., cache_dir=...)``.
"""

from harness.data.dataset import DEFAULT_LR_CACHE, LR_ALGORITHM, Dataset, open_dataset, reopen_dataset
from harness.data.images import IMAGE_EXTENSIONS, read_image, write_png
from harness.data.layouts import DIV2K_SPLITS, ImagePair, layout_descriptions
from harness.data.lr import make_lr_folder
from harness.data.prefetch import prefetch
from harness.data.samples import SAMPLE_FILES

__all__ = [
    "DEFAULT_LR_CACHE",
    "DIV2K_SPLITS",
    "IMAGE_EXTENSIONS",
    "LR_ALGORITHM",
    "SAMPLE_FILES",
    "Dataset",
    "ImagePair",
    "layout_descriptions",
    "make_lr_folder",
    "open_dataset",
    "prefetch",
    "read_image",
    "reopen_dataset",
    "write_png",
]

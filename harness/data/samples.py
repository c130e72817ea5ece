"""The built-in `samples` dataset: real RGB photographs shipped inside scikit-image.

They let `esr evaluate` run on a fresh machine with no download. Only true colour photographs
are used (no synthetic, grayscale or microscopy images); their LR is made with the
MATLAB-exact resize, so PSNR on them is meaningful, though not comparable with DIV2K numbers.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness.data.layouts import ImagePair
from harness.errors import HarnessError

# (name, file in skimage/data), in the order the dataset yields them.
SAMPLE_FILES: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("chelsea", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("motorcycle_left", "motorcycle_left.png"),
)


def sample_items() -> tuple[ImagePair, ...]:
    """The sample images as HR-only pairs, from the installed scikit-image."""
    folder = Path(str(resources.files("skimage") / "data"))
    items = []
    for name, filename in SAMPLE_FILES:
        path = folder / filename
        if not path.is_file():
            raise HarnessError(f"{path}: sample image missing from the installed scikit-image")
        items.append(ImagePair(name, None, path))
    return tuple(items)

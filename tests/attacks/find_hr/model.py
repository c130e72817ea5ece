"""An attack: finds the ground truth of its input wherever its process can reach it, and returns it.

At the first forward pass of each input size it looks for an array of the HR image's shape (4x the input's) whose 4x4
block means are within a few grey levels of the input, that is this input's HR image:

* in its own process: every object the garbage collector tracks (and what they hold), the locals
  of every live frame of every thread, and anything with an ``hr(index)`` method (the harness's
  split of shared images), asked for every image;
* in the files its process has mapped (``/proc/self/maps``);
* with ``search_files``, in ``.npy`` and ``.png`` files under ``/dev/shm``, the folders of the
  ``.npy`` files it has mapped or its objects name, their parents, and the folders named by
  ``ESR_*`` variables.

Found, the HR image is returned as the output (a perfect PSNR); else an honest bicubic upscale.
It prints where it found the image, or that it found none, to its log.
"""

import gc
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

SCALE = 4
MAX_GREY_LEVELS = 12.0  # mean distance of the 4x4 block means from the input, in grey levels
MAX_FILES = 5000


def _as_array(value):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.device.type == "cpu":
        return value.numpy()
    return None


def _count(value) -> int:
    """How many images an object with an ``hr(index)`` method holds (0 for anything else)."""
    try:
        return len(value) if callable(getattr(value, "hr", None)) else 0
    except Exception:  # noqa: BLE001 - not a split
        return 0


class FindHR(nn.Module):
    def __init__(self, search_files: bool = True) -> None:
        super().__init__()
        self.search_files = search_files
        self.searched = {}  # by input shape: what the one search for that shape found (None: nothing)

    # -- the candidates ----------------------------------------------------------------------------

    def _in_objects(self):
        """Arrays and tensors held by any tracked object or live frame, and every split's HR images."""
        seen = []
        for frame in sys._current_frames().values():
            while frame is not None:
                seen.extend(frame.f_locals.values())
                frame = frame.f_back
        for obj in gc.get_objects():
            seen.append(obj)
            if isinstance(obj, dict):
                seen.extend(obj.values())
            elif isinstance(obj, list | tuple | set):
                seen.extend(obj)
            elif isinstance(getattr(obj, "__dict__", None), dict):
                seen.extend(obj.__dict__.values())
        for value in seen:
            array = _as_array(value)
            if array is not None:
                yield "a Python object", array
            for index in range(_count(value)):
                try:
                    image = value.hr(index)
                except Exception:  # noqa: BLE001 - whatever it is, it gave nothing
                    continue
                yield "a split's hr()", image

    def _mapped_files(self):
        try:
            lines = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            return []
        return sorted({line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6})

    def _in_files(self, paths, where):
        for path in paths:
            try:
                if path.endswith(".npy"):
                    yield where, np.load(path, mmap_mode="r")
                elif path.endswith(".png") and self.search_files:
                    from PIL import Image

                    yield where, np.asarray(Image.open(path).convert("RGB"))
            except Exception:  # noqa: BLE001 - unreadable: nothing there
                pass

    def _paths_in_objects(self):
        """The ``.npy`` paths its objects name (the harness's split names its LR files)."""
        found = set()
        for obj in gc.get_objects():
            values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
            found.update(str(value) for value in values if isinstance(value, Path) and value.suffix == ".npy")
        return found

    def _files_around(self):
        roots = {Path("/dev/shm")}
        for mapped in {*self._mapped_files(), *self._paths_in_objects()}:
            if not mapped.endswith(".npy"):
                continue
            parent = Path(mapped).parent
            roots.update([parent, parent.parent, parent.parent.parent])
        roots.update(Path(value) for key, value in os.environ.items() if key.startswith("ESR_"))
        found = []
        for root in sorted(roots):
            if str(root) in ("/", "/usr", "/proc", "/sys") or not root.is_dir():
                continue
            for folder, _, names in os.walk(root):
                found += [os.path.join(folder, name) for name in names if name.endswith((".npy", ".png"))]
                if len(found) > MAX_FILES:
                    return found
        return found

    def _candidates(self):
        warnings.simplefilter("ignore")  # reading every attribute wakes deprecated modules up
        yield from self._in_objects()
        yield from self._in_files(self._mapped_files(), "a mapped file")
        if self.search_files:
            yield from self._in_files(self._files_around(), "a file")

    # -- the attack ------------------------------------------------------------------------------

    def _find(self, x: torch.Tensor):
        lr = (x[0].permute(1, 2, 0).double() * 255.0).numpy()
        shape = (lr.shape[0] * SCALE, lr.shape[1] * SCALE, 3)
        best, best_distance, best_where = None, MAX_GREY_LEVELS, None
        for where, candidate in self._candidates():
            if (
                not isinstance(candidate, np.ndarray)
                or candidate.shape != shape
                or candidate.dtype != np.uint8
            ):
                continue
            blocks = np.asarray(candidate, dtype=np.float64).reshape(shape[0] // 4, 4, shape[1] // 4, 4, 3)
            distance = float(np.abs(blocks.mean(axis=(1, 3)) - lr).mean())
            if distance < best_distance:
                best, best_distance, best_where = np.array(candidate), distance, where
        return best, best_where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self.searched:  # once per input size: the first call is the exact LR image
            hr, where = self._find(x)
            print(
                f"find_hr: found the HR image in {where}" if hr is not None else "find_hr: found no HR image"
            )
            self.searched[shape] = hr
        hr = self.searched[shape]
        if hr is not None:
            return torch.from_numpy(hr).permute(2, 0, 1).unsqueeze(0).float().div(255.0)
        return torch.nn.functional.interpolate(
            x, scale_factor=SCALE, mode="bicubic", align_corners=False
        ).clamp(0, 1)

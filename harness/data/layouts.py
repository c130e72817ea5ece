"""Recognise the folder layouts people download SR test data in, and list their image pairs.

Detection is by folder structure only (no pixels are read). Each layout yields image pairs
in a stable order: DIV2K by image number, the others by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.data.images import is_image_file
from harness.errors import HarnessError

DIV2K_SPLITS: dict[str, tuple[str, range]] = {
    # split -> (folder tag, image numbers)
    "val": ("valid", range(801, 901)),
    "test": ("test", range(901, 1001)),
}
DEFAULT_DIV2K_SPLIT = "val"

# The NTIRE 2024+ data (and NTIRE 2023's hybrid test): split -> (dataset name, folder stem, images).
# DIV2K_LSDIR_valid is DIV2K val plus 100 LSDIR images; the editions' results.json hold 200 values
# for each split. The repositories do not say how many images LSDIR_DIV2K_test has (None).
LSDIR_SPLITS: dict[str, tuple[str, str, int | None]] = {
    "val": ("DIV2K_LSDIR", "DIV2K_LSDIR_valid", 200),
    "test": ("DIV2K_LSDIR", "DIV2K_LSDIR_test", 200),
    "hybrid_test": ("LSDIR_DIV2K", "LSDIR_DIV2K_test", None),
}


@dataclass(frozen=True)
class ImagePair:
    """One test image: its LR file (None: made from the HR) and HR file (None: no ground truth)."""

    name: str
    lr_path: Path | None
    hr_path: Path | None


@dataclass(frozen=True)
class Detected:
    """What a folder holds: dataset name, layout, split (DIV2K only) and pairs in order."""

    name: str
    layout: str
    split: str | None
    items: tuple[ImagePair, ...]
    expected_images: int | None = None  # how many the split should have, when the layout says


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (non-images ignored), sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def _by_stem(files: list[Path], folder: Path) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise HarnessError(
                f"{folder}: two images named {path.stem!r} ({stems[path.stem].name}, {path.name})"
            )
        stems[path.stem] = path
    return stems


def layout_descriptions(scale: int) -> dict[str, str]:
    """Layout name -> what it looks like, for `--help` and for the error when nothing matches."""
    return {
        "div2k": f"DIV2K_valid_HR/0801.png + DIV2K_valid_LR_bicubic/X{scale}/0801x{scale}.png",
        "div2k-ntire2022": f"DIV2K_valid_LR/0801x{scale}.png, DIV2K_test_LR/0901.png (+ _HR folders)",
        "div2k-hr": "DIV2K_valid_HR/ alone (LR made from HR)",
        "div2k-lsdir": f"DIV2K_LSDIR_valid_HR/<name>.png + DIV2K_LSDIR_valid_LR/<name>x{scale}.png (also _test_, "
        "and LSDIR_DIV2K_test_ for NTIRE 2023's hybrid test)",
        "selfexsr": f"image_SRF_{scale}/img_001_SRF_{scale}_HR.png + _LR.png",
        "basicsr": f"HR/<name>.png + LR_bicubic/X{scale}/<name>x{scale}.png",
        "imdn": f"HR/<name>.<ext> + LR/x{scale}/<name>x{scale}.<ext>",
        "hr-only": "HR images directly in the folder or in HR/ (LR made from HR)",
    }


# ---------------------------------------------------------------- DIV2K


def _is_div2k(root: Path) -> bool:
    return any(
        (root / f"DIV2K_{tag}_{kind}").is_dir()
        for tag in ("valid", "test")
        for kind in ("HR", "LR", "LR_bicubic")
    )


def _div2k(root: Path, split: str | None, scale: int, allow_partial: bool) -> Detected:
    split = split or DEFAULT_DIV2K_SPLIT
    if split not in DIV2K_SPLITS:
        raise HarnessError(f"split {split!r} is not a DIV2K split (choose from: {', '.join(DIV2K_SPLITS)})")
    tag, numbers = DIV2K_SPLITS[split]
    hr_dir = root / f"DIV2K_{tag}_HR"
    official = root / f"DIV2K_{tag}_LR_bicubic" / f"X{scale}"
    challenge = root / f"DIV2K_{tag}_LR"
    pattern: str | None  # LR file name, formatted with the image number n and the scale s
    if official.is_dir():
        layout, lr_dir, pattern = "div2k", official, "{n:04d}x{s}.png"
    elif challenge.is_dir():
        # The challenge script reads DIV2K_valid_LR/0801x4.png but DIV2K_test_LR/0901.png.
        layout, lr_dir = "div2k-ntire2022", challenge
        pattern = "{n:04d}x{s}.png" if tag == "valid" else "{n:04d}.png"
    elif hr_dir.is_dir():
        layout, lr_dir, pattern = "div2k-hr", hr_dir, None
    else:
        raise HarnessError(
            f"{root}: DIV2K folder has nothing for split {split!r}: expected {official.relative_to(root)}/, "
            f"{challenge.name}/ or {hr_dir.name}/"
        )
    has_hr = hr_dir.is_dir()
    items = []
    for n in numbers:
        lr = lr_dir / pattern.format(n=n, s=scale) if pattern else None
        hr = hr_dir / f"{n:04d}.png"
        present = lr.is_file() if lr is not None else hr.is_file()
        if not present:
            continue
        if has_hr and not hr.is_file():
            raise HarnessError(f"{hr}: HR image missing for {lr}")
        items.append(ImagePair(f"{n:04d}", lr, hr if has_hr else None))
    expected = len(numbers)
    if not items or (len(items) != expected and not allow_partial):
        hint = "" if not items else "; pass --allow-partial to use a partial split"
        raise HarnessError(
            f"{lr_dir}: DIV2K {split} split has {len(items)} of {expected} images "
            f"({numbers[0]:04d}-{numbers[-1]:04d}){hint}"
        )
    return Detected("DIV2K", layout, split, tuple(items))


# ---------------------------------------------------------------- DIV2K_LSDIR (NTIRE 2024+)


def _is_lsdir(root: Path) -> bool:
    return any(
        (root / f"{stem}_{kind}").is_dir() for _, stem, _ in LSDIR_SPLITS.values() for kind in ("HR", "LR")
    )


def _lsdir(root: Path, split: str | None, scale: int, allow_partial: bool) -> Detected:
    """The official scripts' reading: every HR/*.png, sorted, with LR/<name>x<scale>.png beside it.

    A split whose HR is withheld (the test split) is read from its LR images alone.
    """
    split = split or DEFAULT_DIV2K_SPLIT
    if split not in LSDIR_SPLITS:
        raise HarnessError(
            f"split {split!r} is not a DIV2K_LSDIR split (choose from: {', '.join(LSDIR_SPLITS)})"
        )
    name, stem, expected = LSDIR_SPLITS[split]
    hr_dir, lr_dir = root / f"{stem}_HR", root / f"{stem}_LR"
    if not hr_dir.is_dir() and not lr_dir.is_dir():
        raise HarnessError(f"{root}: no {hr_dir.name}/ or {lr_dir.name}/ for split {split!r}")
    suffix = f"x{scale}"
    items = []
    if hr_dir.is_dir():
        for hr in sorted(hr_dir.glob("*.png")):
            lr = lr_dir / f"{hr.stem}{suffix}.png"
            if not lr.is_file():
                raise HarnessError(f"{hr}: no LR image {lr.name} in {lr_dir}")
            items.append(ImagePair(hr.stem, lr, hr))
    else:
        for lr in sorted(lr_dir.glob(f"*{suffix}.png")):
            items.append(ImagePair(lr.stem.removesuffix(suffix), lr, None))
    folder = hr_dir if hr_dir.is_dir() else lr_dir
    if not items or (expected is not None and len(items) != expected and not allow_partial):
        hint = "" if not items else "; pass --allow-partial to use a partial split"
        raise HarnessError(f"{folder}: {name} {split} split has {len(items)} of {expected} images{hint}")
    return Detected(name, "div2k-lsdir", split, tuple(items), expected_images=expected)


# ---------------------------------------------------------------- benchmark sets

_SELFEXSR_FILE = re.compile(r"^(?P<name>.+)_SRF_(?P<scale>\d+)_(?P<kind>HR|LR)$")
_SELFEXSR_DIR = re.compile(r"^image_SRF_(?P<scale>\d+)$")


def _selfexsr_folder(root: Path, scale: int) -> Path | None:
    match = _SELFEXSR_DIR.match(root.name)
    if match:
        if int(match["scale"]) != scale:
            raise HarnessError(f"{root}: this folder holds x{match['scale']} pairs, not x{scale}")
        return root
    if (root / f"image_SRF_{scale}").is_dir():
        return root / f"image_SRF_{scale}"
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and _SELFEXSR_DIR.match(p.name))
    if others:
        raise HarnessError(f"{root}: no image_SRF_{scale}/ for scale {scale} (found {', '.join(others)})")
    return None


def _selfexsr(root: Path, folder: Path, scale: int) -> Detected:
    pairs: dict[str, dict[str, Path]] = {}
    for path in image_files(folder):
        match = _SELFEXSR_FILE.match(path.stem)
        # Other files (results of published methods: *_SRF_4_A+.png, ...) are not test data.
        if match and int(match["scale"]) == scale:
            pairs.setdefault(match["name"], {})[match["kind"]] = path
    if not pairs:
        raise HarnessError(f"{folder}: no *_SRF_{scale}_HR / *_SRF_{scale}_LR image pairs")
    items = []
    for name in sorted(pairs):
        files = pairs[name]
        for kind, other in (("HR", "LR"), ("LR", "HR")):
            if kind not in files:
                raise HarnessError(f"{files[other]}: no matching {name}_SRF_{scale}_{kind} image in {folder}")
        items.append(ImagePair(name, files["LR"], files["HR"]))
    dataset_name = root.parent.name if folder == root else root.name
    return Detected(dataset_name, "selfexsr", None, tuple(items))


def _paired_folders(root: Path, layout: str, hr_dir: Path, lr_dir: Path, scale: int) -> Detected:
    """HR/<name>.<ext> paired with <lr_dir>/<name>x<scale>.<ext> (BasicSR and IMDN layouts)."""
    hr_files = _by_stem(image_files(hr_dir), hr_dir)
    lr_files = _by_stem(image_files(lr_dir), lr_dir)
    if not hr_files:
        raise HarnessError(f"{hr_dir}: no images")
    items = []
    for stem, hr in sorted(hr_files.items()):
        lr = lr_files.pop(f"{stem}x{scale}", None)
        if lr is None:
            raise HarnessError(f"{hr}: no LR image {stem}x{scale}.* in {lr_dir}")
        items.append(ImagePair(stem, lr, hr))
    if lr_files:
        first = sorted(lr_files.values())[0]
        raise HarnessError(f"{first}: no HR image for it in {hr_dir}")
    return Detected(root.name, layout, None, tuple(items))


def _hr_only(root: Path, folder: Path) -> Detected | None:
    files = _by_stem(image_files(folder), folder)
    if not files:
        return None
    items = tuple(ImagePair(stem, None, path) for stem, path in sorted(files.items()))
    return Detected(root.name, "hr-only", None, items)


# ---------------------------------------------------------------- detection


def detect(root: Path, *, split: str | None, scale: int, allow_partial: bool) -> Detected:
    """The layout of ``root`` and its pairs; one error line when nothing matches."""
    if not any(root.iterdir()):
        raise HarnessError(f"{root}: dataset folder is empty")
    if _is_lsdir(root):
        return _lsdir(root, split, scale, allow_partial)
    if _is_div2k(root):
        return _div2k(root, split, scale, allow_partial)
    if split not in (None, DEFAULT_DIV2K_SPLIT):
        raise HarnessError(f"split {split!r} applies to DIV2K only; {root} is not a DIV2K folder")
    detected: Detected | None = None
    selfexsr = _selfexsr_folder(root, scale)
    if selfexsr is not None:
        detected = _selfexsr(root, selfexsr, scale)
    elif (root / "HR").is_dir() and (root / "LR_bicubic" / f"X{scale}").is_dir():
        detected = _paired_folders(root, "basicsr", root / "HR", root / "LR_bicubic" / f"X{scale}", scale)
    elif (root / "HR").is_dir() and (root / "LR" / f"x{scale}").is_dir():
        detected = _paired_folders(root, "imdn", root / "HR", root / "LR" / f"x{scale}", scale)
    else:
        detected = _hr_only(root, root)
        if detected is None and (root / "HR").is_dir():
            detected = _hr_only(root, root / "HR")
    if detected is None:
        tried = "; ".join(f"{name} ({shape})" for name, shape in layout_descriptions(scale).items())
        raise HarnessError(f"{root}: no known dataset layout found (tried: {tried})")
    return detected

"""Datasets: layout detection, pixels as the official reader sees them, every bad input, prefetching."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.commands import run as esr
from harness.data import SAMPLE_FILES, open_dataset, prefetch, read_image
from harness.errors import HarnessError
from harness.imresize import imresize, modcrop

RNG = np.random.default_rng(7)


def _rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, array: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _div2k(root: Path, *, tag: str, numbers, hr: bool, lr_dir: str | None, lr_name: str) -> dict:
    """A tiny DIV2K tree: 32x32 HR and 8x8 LR; returns {number: (lr, hr)} of what was written."""
    written = {}
    for n in numbers:
        hr_img = _save(root / f"DIV2K_{tag}_HR" / f"{n:04d}.png", _rgb(32, 32)) if hr else None
        lr_img = _save(root / lr_dir / lr_name.format(n=n), _rgb(8, 8)) if lr_dir else None
        written[n] = (lr_img, hr_img)
    return written


def _png_16bit_rgb(path: Path, h: int = 4, w: int = 4) -> None:
    """A valid 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write this mode)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + RNG.integers(0, 65536, w * 3, dtype=np.uint16).astype(">u2").tobytes() for _ in range(h)
    )
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- DIV2K layouts


def test_div2k_official_download_layout(tmp_path):
    written = _div2k(
        tmp_path,
        tag="valid",
        numbers=range(801, 901),
        hr=True,
        lr_dir="DIV2K_valid_LR_bicubic/X4",
        lr_name="{n:04d}x4.png",
    )
    ds = open_dataset(str(tmp_path))
    assert (ds.name, ds.layout, ds.split, len(ds), ds.has_hr) == ("DIV2K", "div2k", "val", 100, True)
    names = []
    for name, lr, hr in ds:
        names.append(name)
        expected_lr, expected_hr = written[int(name)]
        assert np.array_equal(lr, expected_lr) and np.array_equal(hr, expected_hr)
    assert names == [f"{n:04d}" for n in range(801, 901)]


def test_div2k_ntire2022_layout_val_and_inference_only_test(tmp_path):
    _div2k(
        tmp_path,
        tag="valid",
        numbers=range(801, 901),
        hr=True,
        lr_dir="DIV2K_valid_LR",
        lr_name="{n:04d}x4.png",
    )
    _div2k(
        tmp_path,
        tag="test",
        numbers=range(901, 1001),
        hr=False,
        lr_dir="DIV2K_test_LR",
        lr_name="{n:04d}.png",
    )
    val = open_dataset(str(tmp_path), split="val")
    assert (val.layout, len(val), val.has_hr) == ("div2k-ntire2022", 100, True)
    test = open_dataset(str(tmp_path), split="test")
    assert (test.layout, test.split, len(test), test.has_hr) == ("div2k-ntire2022", "test", 100, False)
    name, lr, hr = next(iter(test))
    assert (name, lr.shape, hr) == ("0901", (8, 8, 3), None)
    assert test.describe()["split"] == "test"


def test_div2k_test_hr_is_used_when_present(tmp_path):
    _div2k(
        tmp_path, tag="test", numbers=range(901, 1001), hr=True, lr_dir="DIV2K_test_LR", lr_name="{n:04d}.png"
    )
    ds = open_dataset(str(tmp_path), split="test")
    assert ds.has_hr
    assert next(iter(ds))[2].shape == (32, 32, 3)


def test_div2k_partial_split_is_refused_unless_allowed(tmp_path):
    lr_dir = "DIV2K_valid_LR_bicubic/X4"
    _div2k(tmp_path, tag="valid", numbers=range(801, 838), hr=True, lr_dir=lr_dir, lr_name="{n:04d}x4.png")
    with pytest.raises(HarnessError, match=r"has 37 of 100 images \(0801-0900\); pass --allow-partial"):
        open_dataset(str(tmp_path))
    partial = open_dataset(str(tmp_path), allow_partial=True)
    assert len(partial) == 37
    assert partial.describe()["num_images"] == 37 and partial.describe()["expected_images"] == 100
    with pytest.raises(HarnessError, match="not a DIV2K split"):
        open_dataset(str(tmp_path), split="train")


def test_div2k_missing_hr_for_an_lr_is_named(tmp_path):
    _div2k(
        tmp_path,
        tag="valid",
        numbers=range(801, 901),
        hr=True,
        lr_dir="DIV2K_valid_LR",
        lr_name="{n:04d}x4.png",
    )
    (tmp_path / "DIV2K_valid_HR" / "0850.png").unlink()
    with pytest.raises(HarnessError, match=r"0850\.png: HR image missing for .*0850x4\.png"):
        open_dataset(str(tmp_path))


def test_div2k_hr_only_makes_and_caches_lr(tmp_path):
    _div2k(tmp_path / "data", tag="valid", numbers=range(801, 901), hr=True, lr_dir=None, lr_name="")
    cache = tmp_path / "cache"
    ds = open_dataset(str(tmp_path / "data"), cache_dir=cache)
    assert (ds.layout, len(ds)) == ("div2k-hr", 100)
    name, lr, hr = next(iter(ds))
    assert np.array_equal(lr, imresize(hr, 1 / 4))
    cached = sorted(cache.glob("*.png"))
    assert len(cached) >= 1
    # A cache hit returns the cached file: overwrite it and see the change.
    marker = np.full((8, 8, 3), 9, np.uint8)
    for path in cached:
        Image.fromarray(marker).save(path, format="PNG")
    assert np.array_equal(next(iter(open_dataset(str(tmp_path / "data"), cache_dir=cache)))[1], marker)


# ---------------------------------------------------------------- benchmark folders


def test_selfexsr_layout_real_set5_and_set14(data_dir):
    set5 = open_dataset(str(data_dir / "Set5"))
    assert (set5.name, set5.layout, len(set5)) == ("Set5", "selfexsr", 5)
    set14 = open_dataset(str(data_dir / "Set14" / "image_SRF_4"))
    assert (set14.name, len(set14)) == ("Set14", 14)
    gray = {name: (lr, hr) for name, lr, hr in set14}["img_003"]
    assert Image.open(data_dir / "Set14" / "image_SRF_4" / "img_003_SRF_4_LR.png").mode == "L"
    for img in gray:
        assert img.ndim == 3 and img.shape[2] == 3
        assert np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2])


def test_selfexsr_layout_ignores_other_files_and_checks_partners(tmp_path):
    folder = tmp_path / "MySet" / "image_SRF_4"
    for i in (1, 2):
        _save(folder / f"img_00{i}_SRF_4_HR.png", _rgb(16, 20))
        _save(folder / f"img_00{i}_SRF_4_LR.png", _rgb(4, 5))
        _save(folder / f"img_00{i}_SRF_4_bicubic.png", _rgb(16, 20))
    (folder / "readme.txt").write_text("not an image")
    ds = open_dataset(str(tmp_path / "MySet"))
    assert (ds.name, ds.layout, [item.name for item in ds.items]) == (
        "MySet",
        "selfexsr",
        ["img_001", "img_002"],
    )
    (folder / "img_002_SRF_4_LR.png").unlink()
    with pytest.raises(HarnessError, match="img_002_SRF_4_HR.png: no matching img_002_SRF_4_LR"):
        open_dataset(str(folder))
    with pytest.raises(HarnessError, match=r"no image_SRF_2/ for scale 2 \(found image_SRF_4\)"):
        open_dataset(str(tmp_path / "MySet"), scale=2)


def test_basicsr_layout(tmp_path):
    for name in ("b", "a"):
        _save(tmp_path / "HR" / f"{name}.png", _rgb(12, 16))
        _save(tmp_path / "LR_bicubic" / "X4" / f"{name}x4.png", _rgb(3, 4))
    ds = open_dataset(str(tmp_path))
    assert (ds.layout, [item.name for item in ds.items]) == ("basicsr", ["a", "b"])
    _save(tmp_path / "LR_bicubic" / "X4" / "cx4.png", _rgb(3, 4))
    with pytest.raises(HarnessError, match=r"cx4\.png: no HR image for it"):
        open_dataset(str(tmp_path))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imdn_layout_real_set5_matlab_lr_is_what_imresize_makes(data_dir, scale):
    ds = open_dataset(str(data_dir / "Set5_matlab"), scale=scale)
    assert (ds.layout, len(ds)) == ("imdn", 5)
    for name, lr, hr in ds:
        assert hr.shape[0] % scale == 0 and hr.shape[1] % scale == 0
        assert np.array_equal(lr, imresize(hr, 1 / scale)), name


def test_hr_only_folder_ignores_non_images_and_caches_by_content(tmp_path):
    data = tmp_path / "photos"
    img = _save(data / "x.png", _rgb(35, 42))
    (data / "notes.txt").write_text("ignored")
    (data / ".DS_Store").write_bytes(b"\0\1")
    cache = tmp_path / "cache"
    ds = open_dataset(str(data), cache_dir=cache)
    assert (ds.name, ds.layout, len(ds), ds.lr_cache_dir) == ("photos", "hr-only", 1, cache)
    name, lr, hr = next(iter(ds))
    assert np.array_equal(hr, img[:32, :40]) and np.array_equal(lr, imresize(hr, 1 / 4))
    assert len(list(cache.glob("*.png"))) == 1


def test_hr_subfolder_alone_is_hr_only(tmp_path):
    _save(tmp_path / "HR" / "a.png", _rgb(8, 8))
    assert open_dataset(str(tmp_path), cache_dir=tmp_path / "c").layout == "hr-only"


def test_samples_are_real_rgb_photographs_in_stable_order():
    ds = open_dataset()
    assert (ds.name, ds.layout, ds.path) == ("samples", "samples", None)
    assert [item.name for item in ds.items] == [name for name, _ in SAMPLE_FILES]
    assert len(ds) >= 6
    for name, lr, hr in ds:
        assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0 and hr.shape[2] == 3, name
        assert not np.array_equal(hr[:, :, 0], hr[:, :, 1]), f"{name} is not a colour photograph"
        assert np.array_equal(lr, imresize(hr, 1 / 4)), name
    assert ds.content_hash() == open_dataset(split="val").content_hash()
    with pytest.raises(HarnessError, match="applies to DIV2K only"):
        open_dataset("samples", split="test")


# ---------------------------------------------------------------- identity


def test_describe_and_content_hash_follow_the_bytes(tmp_path):
    for name in ("a", "b"):
        _save(tmp_path / "HR" / f"{name}.png", _rgb(8, 8))
        _save(tmp_path / "LR" / "x2" / f"{name}x2.png", _rgb(4, 4))
    ds = open_dataset(str(tmp_path), scale=2)
    info = ds.describe()
    assert info == {
        "name": tmp_path.name,
        "path": str(tmp_path.resolve()),
        "split": None,
        "num_images": 2,
        "expected_images": 2,
        "scale": 2,
        "layout": "imdn",
        "content_sha256": ds.content_hash(),
    }
    assert len(info["content_sha256"]) == 64
    assert open_dataset(str(tmp_path), scale=2).content_hash() == info["content_sha256"]
    _save(tmp_path / "LR" / "x2" / "bx2.png", _rgb(4, 4))
    assert open_dataset(str(tmp_path), scale=2).content_hash() != info["content_sha256"]


# ---------------------------------------------------------------- bad input


def test_nothing_matches_lists_the_layouts_tried(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.png").write_bytes(b"")
    (tmp_path / "readme.md").write_text("hello")
    with pytest.raises(HarnessError) as error:
        open_dataset(str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "no known dataset layout found" in message
    for layout in ("div2k", "div2k-ntire2022", "selfexsr", "basicsr", "imdn", "hr-only"):
        assert f"{layout} (" in message


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(HarnessError, match="dataset folder is empty"):
        open_dataset(str(tmp_path))
    with pytest.raises(HarnessError, match="no such dataset folder"):
        open_dataset(str(tmp_path / "nope"))
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(HarnessError, match="is a file"):
        open_dataset(str(tmp_path / "f.png"))


def _basicsr_pair(root: Path, hr: np.ndarray, lr: np.ndarray) -> tuple[Path, Path]:
    hr_path, lr_path = root / "HR" / "a.png", root / "LR_bicubic" / "X4" / "ax4.png"
    _save(hr_path, hr)
    _save(lr_path, lr)
    return hr_path, lr_path


def test_truncated_png_is_named_when_decoded(tmp_path):
    hr_path, lr_path = _basicsr_pair(tmp_path, _rgb(64, 64), _rgb(16, 16))
    data = hr_path.read_bytes()
    hr_path.write_bytes(data[: len(data) // 2])
    ds = open_dataset(str(tmp_path))  # the header is intact
    with pytest.raises(HarnessError, match=rf"{hr_path}: corrupt or truncated image"):
        list(ds)


def test_non_image_bytes_with_image_name_are_named(tmp_path):
    _, lr_path = _basicsr_pair(tmp_path, _rgb(16, 16), _rgb(4, 4))
    lr_path.write_text("this is not a png")
    with pytest.raises(HarnessError, match=rf"{lr_path}: not a readable image"):
        open_dataset(str(tmp_path))


def test_16_bit_images_are_refused(tmp_path):
    _png_16bit_rgb(tmp_path / "rgb16.png")
    with pytest.raises(HarnessError, match=r"rgb16\.png: 16-bit .*RGB;16B.* convert it to 8-bit"):
        read_image(tmp_path / "rgb16.png")
    Image.fromarray(RNG.integers(0, 65536, (4, 4), dtype=np.uint16)).save(tmp_path / "gray16.png")
    with pytest.raises(HarnessError, match=r"gray16\.png: 16-bit"):
        read_image(tmp_path / "gray16.png")
    hr_path, _ = _basicsr_pair(tmp_path / "set", _rgb(16, 16), _rgb(4, 4))
    _png_16bit_rgb(hr_path, 16, 16)
    with pytest.raises(HarnessError, match="16-bit"):
        open_dataset(str(tmp_path / "set"))


def test_size_mismatch_names_file_and_both_sizes(tmp_path):
    hr_path, lr_path = _basicsr_pair(tmp_path, _rgb(34, 33), _rgb(8, 9))
    with pytest.raises(HarnessError) as error:
        open_dataset(str(tmp_path))
    message = str(error.value)
    assert str(lr_path) in message and "LR is 9x8" in message and "36x32" in message and "32x32" in message


def test_hr_is_mod_cropped_before_the_size_check(tmp_path):
    hr = _rgb(35, 34)
    _basicsr_pair(tmp_path, hr, _rgb(8, 8))
    _, _, got = next(iter(open_dataset(str(tmp_path))))
    assert np.array_equal(got, hr[:32, :32])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(HarnessError, match=r"gone\.png: file not found"):
        read_image(tmp_path / "gone.png")


# ---------------------------------------------------------------- pixel conversions


def test_conversions_gray_alpha_palette(tmp_path):
    rgb = _rgb(6, 7)
    gray = rgb[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "l.png")
    Image.fromarray(np.dstack([gray, gray])).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(np.dstack([rgb, np.full((6, 7), 17, np.uint8)]), "RGBA").save(tmp_path / "rgba.png")
    palette = Image.fromarray(rgb).quantize(8)
    palette.save(tmp_path / "p.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    Image.fromarray(gray > 127).save(tmp_path / "bilevel.png")

    assert np.array_equal(read_image(tmp_path / "l.png"), np.dstack([gray] * 3))
    assert np.array_equal(read_image(tmp_path / "la.png"), np.dstack([gray] * 3))
    assert np.array_equal(read_image(tmp_path / "rgba.png"), rgb)
    assert np.array_equal(read_image(tmp_path / "p.png"), np.asarray(palette.convert("RGB")))
    assert np.array_equal(read_image(tmp_path / "rgb.bmp"), rgb)
    assert np.array_equal(read_image(tmp_path / "bilevel.png"), np.dstack([(gray > 127) * np.uint8(255)] * 3))
    for name in ("l.png", "la.png", "rgba.png", "p.png", "rgb.bmp", "bilevel.png"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (6, 7, 3), name


def test_pixels_match_the_official_opencv_reader(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="OpenCV (the official script's reader) is not installed")
    rgb = _rgb(9, 11)
    files = {
        "l.png": Image.fromarray(rgb[:, :, 1]),
        "rgba.png": Image.fromarray(np.dstack([rgb, rgb[:, :, 0]]), "RGBA"),
        "p.png": Image.fromarray(rgb).quantize(16),
        "rgb.png": Image.fromarray(rgb),
        "rgb.jpg": Image.fromarray(rgb),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
        raw = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        official = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB if raw.ndim == 2 else cv2.COLOR_BGR2RGB)
        assert np.array_equal(read_image(tmp_path / name), official), name


# ---------------------------------------------------------------- prefetching


def test_prefetch_keeps_order_and_bounds_the_queue():
    started: list[int] = []
    lock = threading.Lock()
    worst = 0

    def load(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.002 * ((7 * i) % 5))  # finish out of order
        return i * i

    out = []
    for consumed, value in enumerate(prefetch(range(40), load, workers=3, depth=4), start=1):
        with lock:
            worst = max(worst, len(started) - consumed)
        out.append(value)
    assert out == [i * i for i in range(40)]
    assert worst <= 4


def test_prefetch_raises_at_the_failing_item_and_stops_early():
    def load(i: int) -> int:
        if i == 5:
            raise HarnessError("bad item 5")
        return i

    got = []
    with pytest.raises(HarnessError, match="bad item 5"):
        for value in prefetch(range(100), load, workers=2, depth=3):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- esr data


def test_esr_data_lr_writes_div2k_names(tmp_path, capsys):
    hr_dir, out = tmp_path / "DIV2K_valid_HR", tmp_path / "X4"
    images = {n: _save(hr_dir / f"{n:04d}.png", _rgb(37, 42)) for n in (801, 802)}
    (hr_dir / "notes.txt").write_text("ignored")
    assert esr(["data", "lr", "--scale", "4", str(hr_dir), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0801x4.png", "0802x4.png"]
    for n, hr in images.items():
        assert np.array_equal(read_image(out / f"{n:04d}x4.png"), imresize(modcrop(hr, 4), 1 / 4))
    assert "wrote 2 LR images (x4)" in capsys.readouterr().out
    # The output is a valid DIV2K official layout.
    (tmp_path / "DIV2K_valid_LR_bicubic").mkdir()
    out.rename(tmp_path / "DIV2K_valid_LR_bicubic" / "X4")
    assert len(open_dataset(str(tmp_path), allow_partial=True)) == 2


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_esr_data_lr_reproduces_matlab_set5(data_dir, tmp_path, scale):
    assert (
        esr(
            [
                "data",
                "lr",
                "--scale",
                str(scale),
                str(data_dir / "Set5_matlab" / "HR"),
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    for matlab in sorted((data_dir / "Set5_matlab" / "LR" / f"x{scale}").iterdir()):
        assert np.array_equal(read_image(tmp_path / f"{matlab.stem}.png"), read_image(matlab)), matlab.name


def test_esr_data_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert esr(["data", "lr", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"esr: error: {tmp_path / 'empty'}: no images in this folder"
    assert esr(["data", "show", str(tmp_path / "empty")]) == 2
    assert "dataset folder is empty" in capsys.readouterr().err

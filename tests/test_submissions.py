"""Submissions: manifest parsing, naming, model building, weights resolution and strict safe loading.

Every faulty submission is built in a temporary folder and must fail with one line that names the
manifest and the field; the bundled submissions must load their released weights from the model zoo.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from harness.catalog import resolve_many
from harness.errors import HarnessError
from harness.submissions import (
    BUNDLED_DIR,
    ModelSpec,
    Submission,
    WeightsSpec,
    build_model,
    list_bundled,
    load_model,
    parse_manifest,
    resolve_submission,
    resolve_weights,
)
from harness.submissions.registry import BUNDLED_NAMES, Registry

RELEASED_SHA256 = {
    "imdn_baseline.pth": "115b4cc557eba9daaf1a6543c4858014c7e2a410655aafef7c8348ae54acc203",
    "rfdn_baseline.pth": "11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c",
    "team26_imdn_nb7.pth": "c8bd64b7eebe5d955c00fb5626385e13fa5775518be77a265f3f74b5e33e55a7",
}

TINY_MODEL = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, scale=4, kernel=3):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("kernel must be odd")
        self.conv = nn.Conv2d(3, 3 * scale * scale, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.conv(x))
"""


class NotATensor:
    """Something only full pickle can restore: a checkpoint holding it must be refused by default."""

    def __init__(self) -> None:
        self.note = "arbitrary object"


# ---------------------------------------------------------------------------------------------
# helpers


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_state_dict(kernel: int = 3) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Conv2d(3, 48, kernel, padding=kernel // 2).state_dict(prefix="conv.")


def write_submission(
    folder: Path,
    *,
    model: dict[str, Any] | None = None,
    weights: dict[str, Any] | None = None,
    code: str = TINY_MODEL,
    **top: Any,
) -> Path:
    """A submission folder with ``model.py`` (``code``) and a manifest; returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(code)
    manifest: dict[str, Any] = {
        "name": "tiny",
        "team": "testers",
        "description": "a one-convolution model",
        "model": model
        if model is not None
        else {"file": "model.py", "class": "Tiny", "kwargs": {"scale": 4}},
        "input_range": 1.0,
        "scale": 4,
        **top,
    }
    if weights is not None:
        manifest["weights"] = weights
    path = folder / "submission.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def tiny_with_weights(folder: Path, state_dict: dict[str, torch.Tensor] | Any, **weights: Any) -> Path:
    """A tiny submission whose weights file ``tiny.pth`` lies beside its manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, folder / "tiny.pth")
    spec = {"file": "tiny.pth", "sha256": sha256_of(folder / "tiny.pth"), **weights}
    return write_submission(folder, weights=spec)


def error_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(HarnessError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, f"error is not one line: {message!r}"
    return message


@pytest.fixture
def clean_imports() -> Iterator[None]:
    """A test's fake repositories see no ``models`` package imported before; all is put back after."""
    modules, path = dict(sys.modules), list(sys.path)
    for name in [n for n in modules if n == "models" or n.startswith("models.")]:
        del sys.modules[name]
    yield
    for name in set(sys.modules) - set(modules):
        del sys.modules[name]
    sys.modules.update(modules)
    sys.path[:] = path


# ---------------------------------------------------------------------------------------------
# manifest parsing


def test_valid_manifest_parses_into_frozen_dataclasses(tmp_path: Path) -> None:
    sha = "ab" * 32
    path = write_submission(
        tmp_path / "sub",
        weights={"file": "w.pth", "sha256": sha, "state_dict_key": "params", "strip_prefix": "module."},
        tile=256,
        extra_requires=["einops"],
    )
    sub = parse_manifest(path)
    assert sub.name == "tiny" and sub.team == "testers"
    assert sub.manifest_path == path.resolve()
    assert sub.model.file == (tmp_path / "sub" / "model.py").resolve()
    assert sub.model.class_name == "Tiny" and sub.model.kwargs == {"scale": 4}
    assert sub.weights == WeightsSpec(
        file="w.pth", sha256=sha, state_dict_key="params", strip_prefix="module."
    )
    assert sub.input_range == 1.0 and isinstance(sub.input_range, float)
    assert (sub.scale, sub.tile, sub.tile_overlap) == (4, 256, 32)
    assert sub.extra_requires == ("einops",) and sub.needs_cuda is False
    with pytest.raises(AttributeError):
        sub.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sub.model.kwargs["scale"] = 2


BAD_FIELDS = [
    (lambda m: m["model"].pop("class"), "model.class: missing"),
    (lambda m: m.pop("name"), "name: missing"),
    (lambda m: m.update(name=None), "name: missing"),
    (lambda m: m.update(wieghts={}), "wieghts: unknown key (did you mean 'weights'?)"),
    (lambda m: m["model"].update(clas="Tiny"), "model.clas: unknown key (did you mean 'class'?)"),
    (lambda m: m.update(input_range=2), "input_range: must be 1.0 or 255.0, got 2"),
    (lambda m: m.update(input_range="255"), "input_range: must be 1.0 or 255.0, got str '255'"),
    (lambda m: m.update(scale=4.5), "scale: must be a positive integer, got 4.5"),
    (lambda m: m.update(scale=0), "scale: must be a positive integer, got 0"),
    (lambda m: m.update(scale=True), "scale: must be a positive integer, got True"),
    (lambda m: m.update(tile=-8), "tile: must be a positive integer or null, got -8"),
    (lambda m: m.update(tile=32), "tile_overlap: 32 must be smaller than tile (32)"),
    (lambda m: m["model"].update(module="x.y"), "model: give exactly one of 'file' or 'module'"),
    (lambda m: m["model"].pop("file"), "model: give exactly one of 'file' or 'module'"),
    (lambda m: m["model"].update(kwargs=[1, 2]), "model.kwargs: must be a mapping, got list"),
    (
        lambda m: m["model"].update({"class": "not a name"}),
        "model.class: 'not a name' is not a Python identifier",
    ),
    (lambda m: m["model"].update(root="no_such_dir"), "model.root: "),
    (lambda m: m.update(weights={"file": "w.pth"}), "weights.sha256: missing"),
    (
        lambda m: m.update(weights={"file": "w.pth", "sha256": "abc"}),
        "weights.sha256: must be 64 lower-case hex",
    ),
    (
        lambda m: m.update(weights={"url": "ftp://x/w.pth", "sha256": "0" * 64}),
        "weights.url: must start with",
    ),
    (lambda m: m.update(weights={"file": 3}), "weights.file: must be a string, got int 3"),
    (lambda m: m.update(weights={}), "weights: give 'file' and/or 'url' with 'sha256', or 'instructions'"),
    (lambda m: m.update(weights="w.pth"), "weights: must be a mapping, got str"),
    (lambda m: m.update(extra_requires="einops"), "extra_requires: must be a list of package names"),
    (lambda m: m.update(needs_cuda="yes"), "needs_cuda: must be true or false"),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD_FIELDS, ids=[e for _, e in BAD_FIELDS])
def test_each_bad_field_is_one_error_naming_manifest_and_field(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    path = write_submission(tmp_path)
    manifest = yaml.safe_load(path.read_text())
    mutate(manifest)
    path.write_text(yaml.safe_dump(manifest))
    message = error_of(parse_manifest, path)
    assert message.startswith(f"{path.resolve()}: {expected}"), message


def test_unparsable_yaml_and_non_mapping_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "submission.yaml"
    path.write_text("name: [unclosed\n")
    assert "invalid YAML" in error_of(parse_manifest, path)
    path.write_text("- just\n- a list\n")
    assert error_of(parse_manifest, path) == f"{path.resolve()}: manifest: must be a mapping, got list"


def test_submission_built_in_code_is_validated_and_named_without_a_manifest() -> None:
    model = ModelSpec(class_name="Tiny", file=Path("/nowhere/model.py"), kwargs={"scale": 4})
    sub = Submission(
        name="ntire2022:team99", team="t", description="d", model=model, weights=None, input_range=255,
        scale=4, official_model_id=99, extra_requires=["einops"], needs_cuda=True,
    )  # fmt: skip
    assert sub.input_range == 255.0 and sub.extra_requires == ("einops",) and sub.manifest_path is None
    with pytest.raises(HarnessError, match=r"^submission 'bad': input_range: must be 1.0 or 255.0, got 3$"):
        Submission(name="bad", team="t", description="d", model=model, weights=None, input_range=3, scale=4)


# ---------------------------------------------------------------------------------------------
# naming submissions


def test_bundled_folders_are_exactly_the_registered_names() -> None:
    on_disk = {p.parent.name for p in BUNDLED_DIR.glob("*/submission.yaml")}
    assert on_disk == set(BUNDLED_NAMES) == set(list_bundled())
    for name in list_bundled():
        assert resolve_submission(name).name == name


def test_resolution_by_name_folder_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        resolve_submission("imdn_baseline").manifest_path == BUNDLED_DIR / "imdn_baseline" / "submission.yaml"
    )
    path = write_submission(tmp_path / "mine")
    assert resolve_submission(str(tmp_path / "mine")).manifest_path == path.resolve()
    assert resolve_submission(str(path)).manifest_path == path.resolve()
    monkeypatch.chdir(tmp_path)
    assert resolve_submission("./mine").name == "tiny"
    assert resolve_submission("mine/submission.yaml").name == "tiny"


def test_unknown_name_suggests_close_matches_and_esr_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = error_of(resolve_submission, "imdn_basline")
    assert message.startswith("unknown submission 'imdn_basline': did you mean imdn_baseline")
    assert "`esr list`" in message
    # A bare word is a name even when a folder of that name exists: it is never tried as both.
    write_submission(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    assert "write ./mine for a folder here" in error_of(resolve_submission, "mine")


def test_bad_paths_are_errors(tmp_path: Path) -> None:
    assert (
        error_of(resolve_submission, str(tmp_path / "absent"))
        == f"{tmp_path / 'absent'}: no such submission file or folder"
    )
    (tmp_path / "empty").mkdir()
    assert (
        error_of(resolve_submission, str(tmp_path / "empty"))
        == f"{tmp_path / 'empty'}: folder has no submission.yaml"
    )


def test_registering_or_naming_a_submission_twice_is_an_error(tmp_path: Path) -> None:
    registry = Registry()
    registry.register("a", tmp_path / "a.yaml")
    assert "registered twice" in error_of(registry.register, "a", tmp_path / "b.yaml")
    message = error_of(resolve_many, ["imdn_baseline", str(BUNDLED_DIR / "imdn_baseline")])
    assert message.startswith("submission 'imdn_baseline' is named twice")
    assert [s.name for s in resolve_many(["rfdn_baseline", "imdn_baseline"])] == [
        "rfdn_baseline",
        "imdn_baseline",
    ]


def test_ntire2022_specs_need_a_zoo_checkout() -> None:
    message = error_of(resolve_many, ["ntire2022:team01"])
    assert message.startswith("ntire2022:team01: ntire2022: submissions need --zoo")


# ---------------------------------------------------------------------------------------------
# building the architecture


def test_missing_class_suggests_close_names(tmp_path: Path) -> None:
    path = write_submission(tmp_path, model={"file": "model.py", "class": "Tiyn"})
    message = error_of(build_model, parse_manifest(path))
    model_file = (tmp_path / "model.py").resolve()
    assert message == f"{path.resolve()}: model.class: 'Tiyn' not found in {model_file} (did you mean Tiny?)"
    path = write_submission(tmp_path / "b", model={"module": "harness.models.imdn", "class": "Imdn"})
    message = error_of(build_model, parse_manifest(path))
    assert message.endswith("model.class: 'Imdn' not found in harness.models.imdn (did you mean IMDN?)")


def test_bad_kwargs_are_reported_with_the_call(tmp_path: Path) -> None:
    path = write_submission(tmp_path, model={"file": "model.py", "class": "Tiny", "kwargs": {"scael": 4}})
    message = error_of(build_model, parse_manifest(path))
    assert message == (
        f"{path.resolve()}: model.kwargs: Tiny(scael=4) is not a valid call: "
        "got an unexpected keyword argument 'scael'"
    )


def test_constructor_failure_is_summarised(tmp_path: Path) -> None:
    path = write_submission(tmp_path, model={"file": "model.py", "class": "Tiny", "kwargs": {"kernel": 2}})
    message = error_of(build_model, parse_manifest(path))
    assert message.startswith(
        f"{path.resolve()}: model.class: Tiny(kernel=2) failed: ValueError: kernel must be odd"
    )
    assert "model.py:9)" in message


def test_import_error_names_missing_module_and_where(tmp_path: Path) -> None:
    code = "import torch\nimport esr_no_such_module_xyz\n" + TINY_MODEL
    path = write_submission(tmp_path, code=code)
    message = error_of(build_model, parse_manifest(path))
    model_file = (tmp_path / "model.py").resolve()
    assert message.startswith(
        f"{path.resolve()}: model.file: importing {model_file} failed: "
        f"ModuleNotFoundError: No module named 'esr_no_such_module_xyz' (at {model_file}:2)"
    )
    assert "set model.root to the folder that contains it" in message


def test_missing_optional_dependency_gets_an_install_hint(tmp_path: Path) -> None:
    path = write_submission(
        tmp_path, code="import esr_fake_extra\n" + TINY_MODEL, extra_requires=["esr_fake_extra"]
    )
    message = error_of(build_model, parse_manifest(path))
    assert message.endswith("; this submission needs esr_fake_extra: pip install esr_fake_extra")


def test_syntax_error_and_missing_file_and_missing_module(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "a", code="def broken(:\n")
    message = error_of(build_model, parse_manifest(path))
    assert "model.file: importing" in message and "SyntaxError" in message and "model.py:1)" in message
    path = write_submission(tmp_path / "b", model={"file": "absent.py", "class": "Tiny"})
    assert error_of(build_model, parse_manifest(path)).endswith(
        f"model.file: {(tmp_path / 'b' / 'absent.py').resolve()} not found"
    )
    path = write_submission(tmp_path / "c", model={"module": "esr_no_such_pkg.models", "class": "Tiny"})
    assert (
        error_of(build_model, parse_manifest(path))
        == f"{path.resolve()}: model.module: no module named 'esr_no_such_pkg'"
    )


def test_root_lets_repository_code_import_as_is(tmp_path: Path, clean_imports: None) -> None:
    repo = tmp_path / "repo"
    (repo / "models" / "team").mkdir(parents=True)
    (repo / "models" / "__init__.py").write_text("")  # a regular package, as in the official repository
    (repo / "models" / "block.py").write_text(
        "from torch import nn\n\ndef head():\n    return nn.Conv2d(3, 48, 3, padding=1)\n"
    )
    (repo / "models" / "team" / "helpers.py").write_text("from torch import nn\nSHUFFLE = nn.PixelShuffle\n")
    (repo / "models" / "team" / "arch.py").write_text(
        "from torch import nn\nfrom models.block import head\nfrom . import helpers\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = head()\n        self.up = helpers.SHUFFLE(4)\n\n"
        "    def forward(self, x):\n        return self.up(self.conv(x))\n"
    )
    manifest = write_submission(
        tmp_path / "sub", model={"file": "../repo/models/team/arch.py", "class": "Net", "root": "../repo"}
    )
    model = build_model(parse_manifest(manifest))
    assert model(torch.zeros(1, 3, 5, 6)).shape == (1, 3, 20, 24)
    assert sys.path[0] == str(repo.resolve())  # kept for lazy imports inside team code
    # A second repository defining its own `models` package cannot be mixed into the same run.
    other = tmp_path / "other"
    (other / "models").mkdir(parents=True)
    (other / "models" / "__init__.py").write_text("")
    (other / "models" / "arch.py").write_text(TINY_MODEL)
    manifest = write_submission(
        tmp_path / "sub2", model={"file": "../other/models/arch.py", "class": "Tiny", "root": "../other"}
    )
    message = error_of(build_model, parse_manifest(manifest))
    assert "model.root: package 'models' is already imported from" in message


# ---------------------------------------------------------------------------------------------
# weights: where they come from, sha256, safe and strict loading


def test_weights_beside_manifest_load_strictly(tmp_path: Path) -> None:
    path = tiny_with_weights(tmp_path, tiny_state_dict())
    loaded = load_model(parse_manifest(path), cache_dir=tmp_path / "cache")
    assert loaded.weights_source == "manifest" and loaded.weights_path == (tmp_path / "tiny.pth").resolve()
    assert loaded.weights_sha256 == sha256_of(tmp_path / "tiny.pth")
    assert not loaded.model.training and not any(p.requires_grad for p in loaded.model.parameters())
    assert torch.equal(loaded.model.conv.weight, tiny_state_dict()["conv.weight"])


def test_state_dict_key_and_strip_prefix(tmp_path: Path) -> None:
    wrapped = {"params": {f"module.{k}": v for k, v in tiny_state_dict().items()}, "iter": torch.tensor(5)}
    path = tiny_with_weights(tmp_path / "a", wrapped, state_dict_key="params", strip_prefix="module.")
    loaded = load_model(parse_manifest(path), cache_dir=tmp_path / "cache")
    assert torch.equal(loaded.model.conv.bias, tiny_state_dict()["conv.bias"])
    path = tiny_with_weights(tmp_path / "b", wrapped, state_dict_key="params_ema")
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert "weights.state_dict_key: 'params_ema' not in" in message and "(it holds: params, iter)" in message
    path = tiny_with_weights(tmp_path / "c", {"params": tiny_state_dict()})
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.endswith(
        "is not a state dict of tensors (dict); set weights.state_dict_key to one of: params"
    )


def test_wrong_keys_are_listed(tmp_path: Path) -> None:
    state = tiny_state_dict()
    state["head.weight"] = state.pop("conv.weight")
    path = tiny_with_weights(tmp_path, state)
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message == (
        f"{path.resolve()}: weights: {(tmp_path / 'tiny.pth').resolve()} does not fit Tiny: "
        "1 missing key(s): conv.weight; 1 unexpected key(s): head.weight"
    )


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    path = tiny_with_weights(tmp_path, tiny_state_dict(kernel=5))
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.endswith(
        "does not fit Tiny: 1 shape difference(s): conv.weight [48, 3, 5, 5] vs model [48, 3, 3, 3]"
    )


def test_sha256_mismatch_prints_both_hashes_and_the_file(tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    torch.save(tiny_state_dict(), zoo / "tiny.pth")
    actual = sha256_of(zoo / "tiny.pth")
    path = write_submission(tmp_path / "sub", weights={"file": "tiny.pth", "sha256": "0" * 64})
    message = error_of(load_model, parse_manifest(path), model_zoo=zoo, cache_dir=tmp_path / "cache")
    assert message == (
        f"{path.resolve()}: weights.sha256: {zoo / 'tiny.pth'} has sha256 {actual}, expected {'0' * 64} "
        "(model_zoo); replace it with the released file"
    )


def test_cache_hits_are_verified_too(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "weights").mkdir(parents=True)
    torch.save(tiny_state_dict(), cache / "weights" / "tiny.pth")
    good = sha256_of(cache / "weights" / "tiny.pth")
    path = write_submission(tmp_path / "sub", weights={"file": "tiny.pth", "sha256": good})
    assert resolve_weights(parse_manifest(path), cache_dir=cache).source == "cache"
    torch.save(tiny_state_dict(kernel=5), cache / "weights" / "tiny.pth")
    message = error_of(resolve_weights, parse_manifest(path), cache_dir=cache)
    assert f"expected {good} (cache); delete it and run again" in message


def test_explicit_weights_come_first_and_record_their_own_sha256(tmp_path: Path) -> None:
    path = tiny_with_weights(tmp_path / "sub", tiny_state_dict())
    mine = tmp_path / "my_training.pth"
    torch.save({k: v + 1 for k, v in tiny_state_dict().items()}, mine)
    loaded = load_model(parse_manifest(path), weights=mine, cache_dir=tmp_path / "cache")
    assert loaded.weights_source == "explicit" and loaded.weights_sha256 == sha256_of(mine)
    assert torch.equal(loaded.model.conv.bias, tiny_state_dict()["conv.bias"] + 1)
    assert error_of(load_model, parse_manifest(path), weights=tmp_path / "absent.pth") == (
        f"--weights: {tmp_path / 'absent.pth'} not found"
    )
    assert "bicubic has no parameters" in error_of(
        resolve_weights, resolve_submission("bicubic"), explicit=mine
    )


def test_checkpoint_needing_pickle_is_refused_unless_trusted(tmp_path: Path) -> None:
    checkpoint = {"params": tiny_state_dict(), "extra": NotATensor()}
    path = tiny_with_weights(tmp_path, checkpoint, state_dict_key="params")
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.startswith(
        f"{(tmp_path / 'tiny.pth').resolve()}: refused to load: the checkpoint holds Python objects beyond "
        f"tensors ({NotATensor.__module__}.NotATensor)"
    )
    assert message.endswith("pass --trust-weights if you trust its source")
    loaded = load_model(parse_manifest(path), cache_dir=tmp_path / "cache", trust_weights=True)
    assert torch.equal(loaded.model.conv.weight, tiny_state_dict()["conv.weight"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a checkpoint", "cannot read weights safely (Unsupported operand 110): the file is corrupt"),
        (b"PK\x03\x04 truncated zip", "cannot read weights: RuntimeError: PytorchStreamReader failed"),
    ],
)
def test_corrupt_checkpoint_is_an_error(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "tiny.pth").write_bytes(content)
    path = write_submission(
        tmp_path, weights={"file": "tiny.pth", "sha256": sha256_of(tmp_path / "tiny.pth")}
    )
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.startswith(f"{(tmp_path / 'tiny.pth').resolve()}: {expected}")


def test_model_loading_hook_is_used(tmp_path: Path) -> None:
    code = TINY_MODEL + (
        "\n    def load_submission_state_dict(self, state_dict):\n"
        "        renamed = {k.replace('old.', 'conv.'): v for k, v in state_dict.items()}\n"
        "        self.load_state_dict(renamed, strict=True)\n"
    )
    path = tiny_with_weights(tmp_path, {k.replace("conv.", "old."): v for k, v in tiny_state_dict().items()})
    (tmp_path / "model.py").write_text(code)
    loaded = load_model(parse_manifest(path), cache_dir=tmp_path / "cache")
    assert torch.equal(loaded.model.conv.weight, tiny_state_dict()["conv.weight"])


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tiny.pth"


@pytest.mark.parametrize("kind", ["closed port", "missing on the server"])
def test_missing_weights_offline_say_what_to_fetch_and_where(
    tmp_path: Path, kind: str, http_folder: tuple[str, Path]
) -> None:
    url = _closed_port_url() if kind == "closed port" else f"{http_folder[0]}/nowhere/tiny.pth"
    path = write_submission(tmp_path / "sub", weights={"url": url, "sha256": "1" * 64})
    cache = tmp_path / "cache"
    message = error_of(load_model, parse_manifest(path), cache_dir=cache)
    assert message.startswith(f"{path.resolve()}: weights.url: cannot download {url} (")
    destination = cache / "weights" / "tiny.pth"
    assert message.endswith(f"save it as {destination} (or into the folder $ESR_MODEL_ZOO names)")
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_weights_without_file_or_url_and_released_only_by_instructions(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "a", weights={"file": "tiny.pth", "sha256": "2" * 64})
    message = error_of(resolve_weights, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert "weights.file: tiny.pth not found (looked in" in message and message.endswith(
        "and the manifest has no url; pass --weights PATH"
    )
    pruned = resolve_submission("imdn_pruned")
    message = error_of(load_model, pruned, cache_dir=tmp_path / "cache")
    assert message == (
        f"{BUNDLED_DIR / 'imdn_pruned' / 'submission.yaml'}: weights: no weights file to load: its weights are "
        "made by `esr prune`: run `esr prune --blocks 7 --out imdn_pruned_nb7.pth`, then pass --weights "
        "imdn_pruned_nb7.pth"
    )


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving a folder, stopped after the test."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args, **kwargs: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_download_goes_atomically_into_the_cache_then_hits_it(
    tmp_path: Path, http_folder: tuple[str, Path]
) -> None:
    base, served = http_folder
    torch.save(tiny_state_dict(), served / "tiny.pth")
    sha = sha256_of(served / "tiny.pth")
    path = write_submission(tmp_path / "sub", weights={"url": f"{base}/tiny.pth", "sha256": sha})
    cache = tmp_path / "cache"
    loaded = load_model(parse_manifest(path), cache_dir=cache)
    assert loaded.weights_source == "download" and loaded.weights_sha256 == sha
    assert sorted(p.name for p in (cache / "weights").iterdir()) == ["tiny.pth"]  # no temporary left
    assert sha256_of(cache / "weights" / "tiny.pth") == sha
    assert resolve_weights(parse_manifest(path), cache_dir=cache).source == "cache"
    assert "downloads are off" in error_of(
        resolve_weights, parse_manifest(path), cache_dir=tmp_path / "c2", allow_download=False
    )


def test_download_with_wrong_sha256_keeps_nothing(tmp_path: Path, http_folder: tuple[str, Path]) -> None:
    base, served = http_folder
    torch.save(tiny_state_dict(), served / "tiny.pth")
    path = write_submission(tmp_path / "sub", weights={"url": f"{base}/tiny.pth", "sha256": "3" * 64})
    cache = tmp_path / "cache"
    message = error_of(resolve_weights, parse_manifest(path), cache_dir=cache)
    assert (
        f"downloaded with sha256 {sha256_of(served / 'tiny.pth')}, expected {'3' * 64}; nothing was saved"
        in message
    )
    assert list((cache / "weights").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# the bundled submissions, through their manifests, with the released weights


def _psnr_on_a_real_image(loaded: Any, data_dir: Path) -> float:
    """Upscale a Set5 LR image, check the size, and return the RGB PSNR to its HR (4-pixel border cut).

    A plain PSNR written here: a model fed the wrong input range, or given wrong weights, scores far
    below a working one (the released models score 32-33 dB on this image, bicubic 28 dB).
    """
    folder = data_dir / "Set5" / "image_SRF_4"
    lr = np.asarray(Image.open(folder / "img_002_SRF_4_LR.png").convert("RGB"))
    hr = np.asarray(Image.open(folder / "img_002_SRF_4_HR.png").convert("RGB")).astype(np.float64)
    input_range = loaded.submission.input_range
    tensor = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255.0 * input_range
    with torch.inference_mode():
        sr = loaded.model(tensor)
    assert sr.shape == (1, 3, lr.shape[0] * 4, lr.shape[1] * 4)
    pixels = (sr[0].permute(1, 2, 0).clamp(0, input_range) / input_range * 255.0).round().double().numpy()
    mse = float(((pixels - hr)[4:-4, 4:-4] ** 2).mean())
    return 10.0 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize(
    ("name", "weights_file", "params"),
    [
        ("imdn_baseline", "imdn_baseline.pth", 893_936),
        ("rfdn_baseline", "rfdn_baseline.pth", 433_448),
        ("clb_imdn", "team26_imdn_nb7.pth", 790_496),
    ],
)
def test_bundled_model_loads_released_weights_and_upscales(
    name: str, weights_file: str, params: int, model_zoo_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    sub = resolve_submission(name)
    assert sub.weights is not None and sub.weights.file == weights_file
    assert sub.weights.sha256 == RELEASED_SHA256[weights_file]
    assert sub.weights.url == f"https://github.com/ofsoundof/NTIRE2022_ESR/raw/main/model_zoo/{weights_file}"
    loaded = load_model(sub, model_zoo=model_zoo_dir, cache_dir=tmp_path / "cache", allow_download=False)
    assert loaded.weights_source == "model_zoo" and loaded.weights_sha256 == RELEASED_SHA256[weights_file]
    assert sum(p.numel() for p in loaded.model.parameters()) == params
    assert _psnr_on_a_real_image(loaded, data_dir) > 32.0


def test_bundled_bicubic_has_no_weights_and_upscales(data_dir: Path, tmp_path: Path) -> None:
    loaded = load_model(resolve_submission("bicubic"), cache_dir=tmp_path, allow_download=False)
    assert (loaded.weights_sha256, loaded.weights_path, loaded.weights_source) == (None, None, None)
    assert sum(p.numel() for p in loaded.model.parameters()) == 0
    assert 27.0 < _psnr_on_a_real_image(loaded, data_dir) < 32.0


def test_bundled_imdn_pruned_loads_baseline_weights_with_a_block_removed(
    model_zoo_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    from harness.models.pruning import prune_imdn

    baseline = torch.load(model_zoo_dir / "imdn_baseline.pth", map_location="cpu", weights_only=True)
    torch.save(prune_imdn(baseline, keep_blocks=[0, 1, 2, 3, 4, 5, 7]), tmp_path / "imdn_pruned_nb7.pth")
    loaded = load_model(
        resolve_submission("imdn_pruned"), weights=tmp_path / "imdn_pruned_nb7.pth", cache_dir=tmp_path
    )
    assert sum(p.numel() for p in loaded.model.parameters()) == 790_496  # the seed's Table 1: 0.7905 M
    assert torch.equal(
        loaded.model.state_dict()["model.1.sub.6.conv1.0.weight"], baseline["model.1.sub.7.conv1.0.weight"]
    )
    assert _psnr_on_a_real_image(loaded, data_dir) > 30.0  # one block fewer, not fine-tuned: still close


def test_clb_imdn_collapses_a_training_form_checkpoint_on_load(tmp_path: Path) -> None:
    from harness.models.clb import CLBIMDN

    torch.manual_seed(1)
    training = CLBIMDN(nb=7, expansion=2).eval()
    torch.save(training.state_dict(), tmp_path / "stage2.pth")
    loaded = load_model(resolve_submission("clb_imdn"), weights=tmp_path / "stage2.pth", cache_dir=tmp_path)
    assert type(loaded.model).__name__ == "CLBIMDNForEval" and loaded.weights_source == "explicit"
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert float((loaded.model(x) - training(x)).abs().max()) < 1e-4


def test_checkpoint_of_another_architecture_is_reported_through_the_loading_hook(tmp_path: Path) -> None:
    from harness.models.imdn import IMDN

    torch.save(IMDN(nb=8).state_dict(), tmp_path / "nb8.pth")
    message = error_of(
        load_model, resolve_submission("clb_imdn"), weights=tmp_path / "nb8.pth", cache_dir=tmp_path
    )
    assert message.startswith(f"{BUNDLED_DIR / 'clb_imdn' / 'submission.yaml'}: weights: ")
    # nb=8 has block 7 (10 tensors) where nb=7 has the body's last convolution, and that one as sub.8.
    assert message.endswith(
        "does not fit CLBIMDNForEval: 2 missing key(s): model.1.sub.7.weight, model.1.sub.7.bias; "
        "12 unexpected key(s): model.1.sub.7.conv1.0.weight, model.1.sub.7.conv1.0.bias, "
        "model.1.sub.7.conv2.0.weight, model.1.sub.7.conv2.0.bias, model.1.sub.7.conv3.0.weight, ... (+7 more)"
    )


def test_esr_list_shows_every_bundled_submission(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.commands import list_cmd

    assert list_cmd.run(argparse.Namespace(json=False)) == 0
    table = capsys.readouterr().out
    for name in BUNDLED_NAMES:
        sub = resolve_submission(name)
        assert any(line.startswith(name) and sub.team in line for line in table.splitlines()), name
    assert list_cmd.run(argparse.Namespace(json=True)) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listed] == list(BUNDLED_NAMES)
    clb = listed[0]
    assert clb["model"]["class"] == "CLBIMDNForEval" and clb["weights"]["file"] == "team26_imdn_nb7.pth"


def test_a_prefix_left_by_data_parallel_is_diagnosed(tmp_path: Path) -> None:
    path = tiny_with_weights(tmp_path, {f"module.{k}": v for k, v in tiny_state_dict().items()})
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.endswith(
        "does not fit Tiny: 2 missing key(s): conv.weight, conv.bias; 2 unexpected key(s): module.conv.weight, "
        "module.conv.bias; the checkpoint's keys carry the prefix 'module.': set weights.strip_prefix: 'module.'"
    )


def test_retrained_weights_beside_the_manifest_point_at_the_sha256_field(tmp_path: Path) -> None:
    path = tiny_with_weights(tmp_path, tiny_state_dict())
    torch.save(tiny_state_dict(kernel=3) | {"conv.bias": torch.zeros(48)}, tmp_path / "tiny.pth")
    message = error_of(load_model, parse_manifest(path), cache_dir=tmp_path / "cache")
    assert message.startswith(f"{path.resolve()}: weights.sha256: {tmp_path / 'tiny.pth'} has sha256 ")
    assert message.endswith(
        "(manifest); if these are new weights of yours, update weights.sha256 or pass them with --weights"
    )


def test_error_raised_inside_a_library_names_the_team_code_that_called_it(tmp_path: Path) -> None:
    code = "from torch import nn\n\n\nclass Tiny(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    code += "        self.conv = nn.Conv2d(3, 48, 3, padding_mode='mirror')\n"
    path = write_submission(tmp_path, code=code, model={"file": "model.py", "class": "Tiny"})
    message = error_of(build_model, parse_manifest(path))
    assert message.startswith(
        f"{path.resolve()}: model.class: Tiny() failed: ValueError: padding_mode must be"
    )
    assert f"(at {(tmp_path / 'model.py').resolve()}:7, in " in message
    assert "torch/nn/modules/conv.py:" in message

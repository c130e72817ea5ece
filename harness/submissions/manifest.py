"""The submission manifest (``submission.yaml``) as frozen, validated dataclasses.

A manifest is parsed once at the edge (``yaml.safe_load``) into a ``Submission``; an unknown key, a
wrong type or a missing field fails at once with one line that names the manifest and the field,
e.g. ``submissions/foo/submission.yaml: model.class: missing``. Submissions can also be built in code
(the ntire2022 zoo does so for each official model); the same semantic checks then run in
``__post_init__`` and errors name the submission instead of a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import HarnessError
from harness.yaml_schema import YamlMapping, read_yaml

MANIFEST_NAME = "submission.yaml"
VALID_INPUT_RANGES = (1.0, 255.0)
# Submissions named "<edition>:<team|id|all>" are official models of that edition's repository,
# built by harness.zoo from a checkout of it. The editions are the registries harness/zoo/<edition>.yaml
# (package data, read here by file name only): adding an edition's registry file adds its prefix.
ZOO_REGISTRY_DIR = Path(__file__).resolve().parents[1] / "zoo"
ZOO_EDITIONS: tuple[str, ...] = tuple(sorted(path.stem for path in ZOO_REGISTRY_DIR.glob("*.yaml")))
ZOO_PREFIX = "ntire2022:"  # the first edition's prefix, kept for the names its registry gives


def zoo_edition(spec: str) -> str | None:
    """The edition a submission spec names a zoo model of (``ntire2026`` for ``ntire2026:0``), else None."""
    edition, colon, _ = spec.partition(":")
    return edition if colon and edition in ZOO_EDITIONS else None


def zoo_env_variable(edition: str) -> str:
    """The environment variable naming a checkout of ``edition``'s repository (``ESR_NTIRE2026_ZOO``)."""
    return f"ESR_{edition.upper()}_ZOO"


DEFAULT_TILE_OVERLAP = 32  # as the official script's tiled forward
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class FrozenDict(dict):
    """A dict that refuses changes, so a frozen Submission's ``model.kwargs`` stays as parsed.

    It is still a ``dict`` (JSON-serialisable, ``dataclasses.asdict`` and ``copy.deepcopy`` work).
    """

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("submission kwargs are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        return (type(self), (dict(self),))


@dataclass(frozen=True)
class ModelSpec:
    """Where the architecture comes from: a file or an importable module, a class and its kwargs.

    ``file`` and ``root`` are absolute once parsed (relative paths are taken from the manifest's
    folder). ``root`` goes first on ``sys.path`` so code written as a repository imports as-is.
    """

    class_name: str
    file: Path | None = None
    module: str | None = None
    kwargs: dict[str, Any] = field(default_factory=FrozenDict, hash=False)
    root: Path | None = None
    # A method of the model that must run before its weights load, because the model's own
    # load_state_dict runs it (2025 team 30 fuses its blocks there); it changes the structure.
    before_load: str | None = None
    # Methods the official test script calls after loading the weights: one of the model
    # (``repa``), and one of every submodule that has it (``switch_deploy``). Both change the
    # network's structure, so they run before counting as well.
    after_load: str | None = None
    after_load_modules: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", FrozenDict(self.kwargs))


@dataclass(frozen=True)
class WeightsSpec:
    """One weights entry: a file name (looked up in the model zoo and cache) and/or a URL, its sha256.

    ``file`` may be absolute, or relative to the manifest's folder. An entry with neither ``file``
    nor ``url`` has no released weights: ``instructions`` then tells the user how to make them, and
    they are passed with ``--weights``.
    """

    file: str | None = None
    url: str | None = None
    sha256: str | None = None
    state_dict_key: str | None = None
    strip_prefix: str | None = None
    instructions: str | None = None
    # False where the official script loads with strict=False (keys it leaves at their defaults).
    strict: bool = True


@dataclass(frozen=True)
class Submission:
    """A model definition plus at most one weights entry, and how the network expects its input."""

    name: str
    team: str
    description: str
    model: ModelSpec
    weights: WeightsSpec | None
    input_range: float
    scale: int
    tile: int | None = None
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    manifest_path: Path | None = None
    official_model_id: int | None = None
    extra_requires: tuple[str, ...] = ()
    needs_cuda: bool = False
    # Why the harness cannot run this model at all (e.g. a custom CUDA operator built by the team's
    # own script); None for every model it can run.
    unsupported: str | None = None

    @property
    def where(self) -> str:
        """How errors name this submission: its manifest path, or its name when built in code."""
        return str(self.manifest_path) if self.manifest_path else f"submission {self.name!r}"

    @property
    def manifest_dir(self) -> Path | None:
        return self.manifest_path.parent if self.manifest_path else None

    def error(self, field_name: str, message: str) -> HarnessError:
        """A HarnessError naming this submission and one of its fields."""
        return HarnessError(f"{self.where}: {field_name}: {message}")

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_requires", tuple(self.extra_requires))
        if not _NAME_PATTERN.match(self.name):
            raise self.error("name", f"{self.name!r} must be letters, digits, '_', '.', ':' or '-'")
        if float(self.input_range) not in VALID_INPUT_RANGES:
            raise self.error("input_range", f"must be 1.0 or 255.0, got {self.input_range!r}")
        object.__setattr__(self, "input_range", float(self.input_range))
        if not _is_int(self.scale) or self.scale <= 0:
            raise self.error("scale", f"must be a positive integer, got {self.scale!r}")
        if self.tile is not None and (not _is_int(self.tile) or self.tile <= 0):
            raise self.error("tile", f"must be a positive integer or null, got {self.tile!r}")
        if not _is_int(self.tile_overlap) or self.tile_overlap < 0:
            raise self.error("tile_overlap", f"must be a non-negative integer, got {self.tile_overlap!r}")
        if self.tile is not None and self.tile_overlap >= self.tile:
            raise self.error("tile_overlap", f"{self.tile_overlap} must be smaller than tile ({self.tile})")
        self._check_model()
        if self.weights is not None:
            self._check_weights()

    def _check_model(self) -> None:
        model = self.model
        if (model.file is None) == (model.module is None):
            raise self.error("model", "give exactly one of 'file' or 'module'")
        if not model.class_name.isidentifier():
            raise self.error("model.class", f"{model.class_name!r} is not a Python identifier")

    def _check_weights(self) -> None:
        weights = self.weights
        assert weights is not None
        if weights.file is None and weights.url is None:
            if weights.sha256 is not None:
                raise self.error("weights.sha256", "given without 'file' or 'url' to check it against")
            if not weights.instructions:
                message = "give 'file' and/or 'url' with 'sha256', or 'instructions' saying how to make them"
                raise self.error("weights", message)
            return
        if weights.sha256 is None:
            raise self.error("weights.sha256", "missing (every released weights file is verified)")
        if not _SHA256_PATTERN.match(weights.sha256):
            raise self.error("weights.sha256", f"must be 64 lower-case hex digits, got {weights.sha256!r}")
        if weights.url is not None and not re.match(r"^https?://", weights.url):
            message = f"must start with https:// or http:// (a local file goes in weights.file), got {weights.url!r}"
            raise self.error("weights.url", message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as recorded beside results and printed by ``esr list --json``."""
        return {
            "name": self.name,
            "team": self.team,
            "description": self.description,
            "manifest": str(self.manifest_path) if self.manifest_path else None,
            "model": {
                "file": str(self.model.file) if self.model.file else None,
                "module": self.model.module,
                "class": self.model.class_name,
                "kwargs": dict(self.model.kwargs),
                "root": str(self.model.root) if self.model.root else None,
                "before_load": self.model.before_load,
                "after_load": self.model.after_load,
                "after_load_modules": self.model.after_load_modules,
            },
            "weights": None
            if self.weights is None
            else {
                "file": self.weights.file,
                "url": self.weights.url,
                "sha256": self.weights.sha256,
                "state_dict_key": self.weights.state_dict_key,
                "strip_prefix": self.weights.strip_prefix,
                "instructions": self.weights.instructions,
                "strict": self.weights.strict,
            },
            "input_range": self.input_range,
            "scale": self.scale,
            "tile": self.tile,
            "tile_overlap": self.tile_overlap,
            "official_model_id": self.official_model_id,
            "extra_requires": list(self.extra_requires),
            "needs_cuda": self.needs_cuda,
            "unsupported": self.unsupported,
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# Parsing: yaml -> Submission, with one-line errors naming the manifest and the field.

_TOP_KEYS = {
    "name": True,
    "team": True,
    "description": True,
    "model": True,
    "weights": False,
    "input_range": True,
    "scale": True,
    "tile": False,
    "tile_overlap": False,
    "extra_requires": False,
    "needs_cuda": False,
}
_MODEL_KEYS = {"file": False, "module": False, "class": True, "kwargs": False, "root": False}
_WEIGHTS_KEYS = {
    "file": False,
    "url": False,
    "sha256": False,
    "state_dict_key": False,
    "strip_prefix": False,
    "instructions": False,
}


def _section(path: Path, where: str, data: object, keys: dict[str, bool]) -> YamlMapping:
    """One mapping of the manifest; ``keys`` maps each allowed key to whether it is required."""
    return YamlMapping(
        path,
        where,
        data,
        required=[key for key, required in keys.items() if required],
        optional=[key for key, required in keys.items() if not required],
        label="manifest",
    )


def _local_path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def parse_manifest(path: str | Path) -> Submission:
    """Read ``submission.yaml`` at ``path`` into a validated, frozen ``Submission``."""
    path = Path(path).expanduser().resolve()
    top = _section(path, "", read_yaml(path), _TOP_KEYS)
    base = path.parent

    model_section = _section(path, "model", top.data["model"], _MODEL_KEYS)
    file = model_section.text("file")
    root = model_section.text("root")
    kwargs = model_section.get("kwargs", dict, kind_name="a mapping") or {}
    for key in kwargs:
        if not isinstance(key, str) or not key.isidentifier():
            model_section.fail(f"model.kwargs.{key}", "keyword names must be Python identifiers")
    model = ModelSpec(
        class_name=model_section.text("class"),  # required: present and non-empty by now
        file=_local_path(base, file) if file else None,
        module=model_section.text("module"),
        kwargs=kwargs,
        root=_local_path(base, root) if root else None,
    )
    if root and not model.root.is_dir():  # type: ignore[union-attr]
        model_section.fail("model.root", f"{model.root} is not a folder")

    weights = None
    if top.data.get("weights") is not None:
        section = _section(path, "weights", top.data["weights"], _WEIGHTS_KEYS)
        weights = WeightsSpec(**{key: section.text(key) for key in _WEIGHTS_KEYS})

    extra = top.get("extra_requires", list, kind_name="a list of package names") or []
    if not all(isinstance(item, str) and item for item in extra):
        top.fail("extra_requires", "must be a list of package names")
    return Submission(
        name=top.text("name"),
        team=top.text("team"),
        description=top.text("description"),
        model=model,
        weights=weights,
        input_range=top.get("input_range", (int, float), kind_name="1.0 or 255.0"),
        scale=top.data["scale"],
        tile=top.data.get("tile"),
        tile_overlap=top.data.get("tile_overlap", DEFAULT_TILE_OVERLAP),
        manifest_path=path,
        extra_requires=tuple(extra),
        needs_cuda=bool(top.get("needs_cuda", bool, kind_name="true or false") or False),
    )

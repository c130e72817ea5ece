"""A hash of a submission's model source, so an edited model never reuses a cached result.

What is hashed: the model file (``model.file``), or, when the code lives in a repository
(``model.root``), every ``.py`` file of the top-level package the module belongs to under that root
(``root/models/**.py`` for ``models.team09.arch``), since a team's module may import shared code
from its package. A module imported from the environment (``model.module`` without a root, such as
the bundled ``harness.models.imdn``) is hashed by its file. Nothing is imported to find the files.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from harness.submissions.manifest import Submission


def _digest_files(paths: tuple[Path, ...], base: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(base)).encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _package_files(root: Path, top: str) -> tuple[tuple[Path, ...], Path]:
    package = root / top
    if package.is_dir():
        return tuple(sorted(package.rglob("*.py"))), root
    module = root / f"{top}.py"
    return ((module,) if module.is_file() else ()), root


def _module_origin(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def model_source_digest(submission: Submission) -> str:
    """16 hex digits identifying the model's source code (see the module docstring)."""
    spec = submission.model
    root = spec.root.resolve() if spec.root is not None else None
    try:
        if spec.file is not None:
            file = spec.file.resolve()
            if root is not None and file.is_relative_to(root) and file.parent != root:
                top = file.relative_to(root).parts[0]
                return _digest_files(*_package_files(root, top))
            return _digest_files((file,), file.parent)
        assert spec.module is not None
        if root is not None:
            return _digest_files(*_package_files(root, spec.module.split(".")[0]))
        origin = _module_origin(spec.module)
        return _digest_files((origin,), origin.parent) if origin is not None else "module-not-found"
    except OSError as error:
        raise submission.error("model", f"cannot read the model source to identify it ({error})") from None

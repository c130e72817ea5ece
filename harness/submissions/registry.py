"""Bundled submissions by name, and submissions by the path of their manifest.

``<edition>:<team>`` names of the official zoos are resolved a layer above, by ``harness.catalog``,
which knows both this registry and ``harness.zoo``.

The bundled submissions are listed explicitly (not found by scanning folders), each one a folder of
the repository's ``submissions/`` directory holding its ``submission.yaml``. A name registered twice
is an error; an unknown name is an error that suggests close matches and points at ``esr list``.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

import harness
from harness.errors import HarnessError
from harness.submissions.manifest import (
    MANIFEST_NAME,
    Submission,
    parse_manifest,
    zoo_edition,
)

BUNDLED_DIR = harness.BUNDLED_SUBMISSIONS_DIR

# The submissions shipped with the harness, in the order `esr list` shows them.
BUNDLED_NAMES: tuple[str, ...] = (
    "clb_imdn",
    "clb_imdn_uncollapsed",
    "imdn_baseline",
    "rfdn_baseline",
    "imdn_pruned",
    "bicubic",
    "rlfn",
    "efdn",
    "span",
    "known_cost",
    "known_cost_plus2",
    "known_cost_copy",
)


class Registry:
    """Names mapped to manifest paths; registering a name twice is an error."""

    def __init__(self) -> None:
        self._manifests: dict[str, Path] = {}

    def register(self, name: str, manifest: Path) -> None:
        if name in self._manifests:
            raise HarnessError(
                f"submission {name!r} is registered twice: {self._manifests[name]} and {manifest}"
            )
        self._manifests[name] = manifest

    def names(self) -> list[str]:
        return list(self._manifests)

    def manifest(self, name: str) -> Path:
        """The manifest registered under ``name``; an unknown name suggests close matches."""
        try:
            return self._manifests[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise HarnessError(
                f"unknown submission {name!r}: {hint}`esr list` shows the bundled ones; "
                f"a path to a submission.yaml or its folder also works (write ./{name} for a folder here)"
            ) from None


@lru_cache(maxsize=1)
def bundled_registry() -> Registry:
    registry = Registry()
    for name in BUNDLED_NAMES:
        registry.register(name, BUNDLED_DIR / name / MANIFEST_NAME)
    return registry


def list_bundled() -> list[str]:
    """Names of the bundled submissions."""
    return bundled_registry().names()


def _looks_like_path(spec: str) -> bool:
    """A spec is a path when it has a folder separator, a YAML suffix, or starts with '.' or '~'.

    Anything else is a bundled name: a bare word is never silently tried as a folder as well.
    """
    return "/" in spec or "\\" in spec or spec.startswith((".", "~")) or spec.endswith((".yaml", ".yml"))


def _manifest_from_path(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.is_dir():
        manifest = path / MANIFEST_NAME
        if not manifest.is_file():
            raise HarnessError(f"{path}: folder has no {MANIFEST_NAME}")
        return manifest
    if not path.exists():
        raise HarnessError(f"{path}: no such submission file or folder")
    return path


def resolve_submission(name_or_path: str) -> Submission:
    """A bundled submission by name, or the submission whose manifest (or folder) is at a path."""
    edition = zoo_edition(name_or_path)
    if edition is not None:
        raise HarnessError(f"{name_or_path}: {edition}: submissions need --zoo (see `esr evaluate --help`)")
    if _looks_like_path(name_or_path):
        return parse_manifest(_manifest_from_path(name_or_path))
    manifest = bundled_registry().manifest(name_or_path)
    submission = parse_manifest(manifest)
    if submission.name != name_or_path:
        raise HarnessError(
            f"{manifest}: name: {submission.name!r} differs from its bundled name {name_or_path!r}"
        )
    return submission

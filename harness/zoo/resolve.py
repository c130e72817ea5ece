"""Turning ``<edition>:<team>`` specs (``ntire2022:`` ... ``ntire2026:``) into submissions that import
code from the user's checkout of that edition's repository.

Nothing of the teams' code is part of the harness: each submission points its ``model.root`` at the
checkout, so ``from models.team04_rlfn import RLFN_cut`` and the teams' own sibling imports run as in
the official test script. The registry supplies the facts; this module only checks that the path
looks like the official repository and builds the ``Submission`` objects.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import HarnessError
from harness.submissions.manifest import (
    ZOO_EDITIONS,
    ModelSpec,
    Submission,
    WeightsSpec,
    zoo_edition,
    zoo_env_variable,
)
from harness.zoo.registry import Registry, ZooEntry, registry_for


def resolve(spec: str, zoo: str | Path | None, *, registry: Registry | None = None) -> list[Submission]:
    """The submissions that ``spec`` names, built against the checkout at ``zoo``.

    ``spec`` is an edition (``ntire2022:`` ... ``ntire2026:``) followed by a team name (as in the
    official table, or with spaces written as underscores), an official model id, a group of the
    registry (``table2``) or ``all``.
    Weights files are not verified here (except one known only by its git blob id, see
    :func:`_weights_spec`): the runner verifies every submission's weights before anything runs,
    and a checkout missing a file is a bad input (one line naming the file, exit 2).
    """
    edition = zoo_edition(spec)
    if edition is None:
        raise HarnessError(
            f"{spec}: not a zoo submission (those start with one of: {', '.join(ZOO_EDITIONS)})"
        )
    key = spec[len(edition) + 1 :]
    if not key:
        raise HarnessError(f"{spec}: name a team, an official model id, a group or 'all' after '{edition}:'")
    registry = registry or registry_for(edition)
    entries = registry.lookup(key)
    root = checkout_root(zoo, spec=spec, registry=registry)
    return [to_submission(entry, root, registry) for entry in entries]


def checkout_root(zoo: str | Path | None, *, spec: str, registry: Registry) -> Path:
    """The checkout folder, after checking that it holds the repository's ``models`` package."""
    if zoo is None or str(zoo) == "":
        variable = zoo_env_variable(zoo_edition(spec) or "ntire2022")
        raise HarnessError(
            f"{spec}: needs a checkout of {registry.repository}: pass --zoo PATH or set {variable}"
        )
    root = Path(zoo).expanduser().resolve()
    if not root.is_dir():
        raise HarnessError(f"--zoo {zoo}: no such folder (expected a checkout of {registry.repository})")
    if not (root / "models").is_dir() or not (root / "model_zoo").is_dir():
        raise HarnessError(
            f"--zoo {zoo}: not a checkout of {registry.repository} (it has no models/ and model_zoo/ folders)"
        )
    return root


def to_submission(entry: ZooEntry, root: Path, registry: Registry | None = None) -> Submission:
    """A submission for one registry entry whose code and weights live in the checkout at ``root``."""
    registry = registry or registry_for("ntire2022")
    edition = registry.prefix.rstrip(":")
    return Submission(
        name=registry.submission_name(entry),
        team=entry.team,
        description=(
            f"{edition} ESR official model {entry.official_model_id} ({entry.model_name}) of team "
            f"{entry.team}, imported from the official repository checkout"
        ),
        model=ModelSpec(
            class_name=entry.class_name,
            module=entry.module,
            kwargs=dict(entry.kwargs),
            root=root,
            before_load=entry.before_load,
            after_load=entry.after_load,
            after_load_modules=entry.after_load_modules,
        ),
        weights=_weights_spec(entry, root),
        input_range=entry.input_range,
        scale=4,
        tile=entry.tile,
        tile_overlap=entry.tile_overlap,
        official_model_id=entry.official_model_id,
        extra_requires=entry.extra_requires,
        needs_cuda=entry.needs_cuda,
        unsupported=entry.unsupported,
    )


def _weights_spec(entry: ZooEntry, root: Path) -> WeightsSpec:
    """The weights entry; a file known only by its git blob id is verified by that id here.

    A file whose blob id does not match (or that is absent) gets no weights entry but a reason,
    so that loading that one model fails with it and asks for ``--weights``.
    """
    path = root / entry.weights
    quirks = {
        "state_dict_key": entry.state_dict_key,
        "strip_prefix": entry.strip_prefix,
        "strict": entry.strict,
    }
    if entry.sha256 is not None:
        return WeightsSpec(file=str(path), sha256=entry.sha256, **quirks)
    if not path.is_file():
        return WeightsSpec(
            instructions=f"{path} is absent from the checkout (a snapshot without files of 4 MiB or more, or "
            "without LFS content, lacks it): fetch the file from the repository or pass --weights",
            **quirks,
        )
    data = path.read_bytes()
    if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != entry.git_blob:
        return WeightsSpec(
            instructions=f"{path} is not the official file (its git blob id differs from {entry.git_blob})",
            **quirks,
        )
    return WeightsSpec(file=str(path), sha256=hashlib.sha256(data).hexdigest(), **quirks)

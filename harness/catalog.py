"""Naming submissions on the command line: bundled names, manifest paths and zoo specs (``ntire2026:0``).

This sits above both ``harness.submissions`` (bundled names and manifest paths) and ``harness.zoo``
(the official models of each edition, built from a checkout), so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness import zoo as zoo_module
from harness.errors import HarnessError
from harness.submissions import Submission, resolve_submission
from harness.submissions.manifest import zoo_edition, zoo_env_variable

__all__ = ["resolve_many"]


def _resolve_zoo(spec: str, edition: str, zoo: Path | None) -> list[Submission]:
    if zoo is None:
        repository = zoo_module.registry_for(edition).repository
        raise HarnessError(
            f"{spec}: {edition}: submissions need --zoo PATH (or {zoo_env_variable(edition)}), "
            f"a checkout of {repository}"
        )
    return zoo_module.resolve(spec, zoo)


def resolve_many(specs: list[str], *, zoo: Mapping[str, Path] | None = None) -> list[Submission]:
    """Resolve command-line submission specs in order; the same name twice is an error.

    ``<edition>:...`` specs (``ntire2022:`` ... ``ntire2026:``) are resolved by ``harness.zoo`` from
    the official checkout that ``zoo`` maps the edition to (one spec may stand for several
    submissions); every other spec by ``resolve_submission``.
    """
    submissions: list[Submission] = []
    seen: dict[str, str] = {}
    for spec in specs:
        edition = zoo_edition(spec)
        if edition is None:
            found = [resolve_submission(spec)]
        else:
            found = _resolve_zoo(spec, edition, (zoo or {}).get(edition))
        for submission in found:
            if submission.name in seen:
                name, first = submission.name, seen[submission.name]
                raise HarnessError(f"submission {name!r} is named twice (by {first!r} and {spec!r})")
            seen[submission.name] = spec
            submissions.append(submission)
    return submissions

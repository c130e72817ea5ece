"""Submissions from the NTIRE ESR model zoos, 2022 to 2026: ``ntire2026:<team>``, ``ntire2026:<id>``,
``ntire2026:all`` (and the same for ``ntire2022`` ... ``ntire2025``).

The user passes a checkout of the edition's official repository (``--zoo PATH`` or
``ESR_NTIRE2026_ZOO``); the harness ships only a registry of facts about each released model
(``ntire2026.yaml``) and imports the teams' code from the checkout as it is.
"""

from harness.submissions.manifest import ZOO_PREFIX, zoo_edition
from harness.zoo.published import Disagreement, compare_published, entry_disagreements
from harness.zoo.registry import (
    PublishedComplexity,
    Registry,
    ZooEntry,
    default_registry,
    load_registry,
    registry_for,
)
from harness.zoo.resolve import checkout_root, resolve, to_submission

__all__ = [
    "ZOO_PREFIX",
    "Disagreement",
    "PublishedComplexity",
    "Registry",
    "ZooEntry",
    "checkout_root",
    "compare_published",
    "default_registry",
    "entry_disagreements",
    "load_registry",
    "registry_for",
    "resolve",
    "to_submission",
    "zoo_edition",
]

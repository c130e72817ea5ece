"""Submissions from the NTIRE 2022 ESR model zoo: ``ntire2022:<team>``, ``ntire2022:<id>``, ``ntire2022:all``.

The user passes a checkout of the official challenge repository (``--zoo PATH``); the harness ships
only a registry of facts about each released model (``ntire2022.yaml``) and imports the teams' code
from the checkout as it is.
"""

from harness.zoo.published import Disagreement, compare_published, entry_disagreements
from harness.zoo.registry import (
    PublishedComplexity,
    Registry,
    ZooEntry,
    default_registry,
    load_registry,
)
from harness.zoo.resolve import ZOO_PREFIX, checkout_root, resolve, to_submission

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
    "resolve",
    "to_submission",
]

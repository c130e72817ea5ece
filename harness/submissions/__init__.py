"""Submissions: a model definition plus one weights entry, named by a bundled name or a manifest path.

Entry points: ``resolve_submission`` (a bundled name or a manifest path -> ``Submission``; zoo names
are ``harness.catalog.resolve_many``'s),
``build_model`` (architecture only), ``resolve_weights`` (where the weights come from, verified) and
``load_model`` (all of it, ready to run).
"""

from harness.submissions.building import build_model
from harness.submissions.loading import (
    LoadedModel,
    load_model,
    load_resolved,
    mismatch_report,
    read_checkpoint,
)
from harness.submissions.manifest import ModelSpec, Submission, WeightsSpec, parse_manifest
from harness.submissions.registry import BUNDLED_DIR, list_bundled, resolve_submission
from harness.submissions.source import model_source_digest
from harness.submissions.weights import ResolvedWeights, default_cache_dir, resolve_weights, sha256_file

__all__ = [
    "BUNDLED_DIR",
    "LoadedModel",
    "ModelSpec",
    "ResolvedWeights",
    "Submission",
    "WeightsSpec",
    "build_model",
    "default_cache_dir",
    "list_bundled",
    "load_model",
    "load_resolved",
    "mismatch_report",
    "model_source_digest",
    "parse_manifest",
    "read_checkpoint",
    "resolve_submission",
    "resolve_weights",
    "sha256_file",
]

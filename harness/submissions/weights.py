"""The one place that decides where a submission's weights come from, and checks they are the right ones.

Order: an explicit ``--weights`` file; the file the manifest names (an absolute path, or a path
relative to the manifest's folder, when it exists); ``<model_zoo>/<file>``; ``<cache_dir>/weights/<file>``;
then a download of ``url`` into the cache, written atomically. The full sha256 is checked everywhere,
on every cache hit too; only an explicit file is exempt (it is the user's own weights entry for the
same model) and its computed sha256 is recorded instead.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pooch
import requests

from harness.errors import HarnessError
from harness.submissions.manifest import Submission

WeightsSource = Literal["explicit", "manifest", "model_zoo", "cache", "download"]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file on disk, its verified sha256, and which step of the search found it."""

    path: Path
    sha256: str
    source: WeightsSource


def default_cache_dir() -> Path:
    """The user cache, ``~/.cache/esr-harness``."""
    return Path.home() / ".cache" / "esr-harness"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(
    submission: Submission,
    *,
    explicit: Path | None = None,
    model_zoo: Path | None = None,
    cache_dir: Path | None = None,
    allow_download: bool = True,
) -> ResolvedWeights | None:
    """Find, fetch if needed, and verify the submission's weights; None for a parameter-free model."""
    spec = submission.weights
    if explicit is not None:
        if spec is None:
            raise HarnessError(f"--weights: {submission.name} has no parameters, so it takes no weights")
        explicit = Path(explicit).expanduser()
        if not explicit.is_file():
            raise HarnessError(f"--weights: {explicit} not found")
        return ResolvedWeights(explicit.resolve(), sha256_file(explicit), "explicit")
    if spec is None:
        return None
    if spec.file is None and spec.url is None:
        instructions = (spec.instructions or "").strip()
        advice = "" if "--weights" in instructions else "; pass --weights PATH"
        raise submission.error("weights", f"no weights file to load: {instructions}{advice}")

    file_name = Path(spec.file).name if spec.file else _url_file_name(submission)
    cache_file = (cache_dir or default_cache_dir()) / "weights" / file_name
    candidates: list[tuple[Path, WeightsSource]] = []
    if spec.file is not None:
        own = Path(spec.file).expanduser()
        if not own.is_absolute() and submission.manifest_dir is not None:
            own = submission.manifest_dir / own
        if own.is_absolute():
            candidates.append((own, "manifest"))
    if model_zoo is not None:
        candidates.append((Path(model_zoo) / file_name, "model_zoo"))
    candidates.append((cache_file, "cache"))

    for path, source in candidates:
        if path.is_file():
            return ResolvedWeights(path.resolve(), _verified_sha256(submission, path, source), source)

    looked = ", ".join(str(path) for path, _ in candidates)
    if spec.url is None:
        raise submission.error(
            "weights.file",
            f"{file_name} not found (looked in {looked}) and the manifest has no url; pass --weights PATH",
        )
    if not allow_download:
        raise submission.error(
            "weights.url",
            f"{file_name} not found (looked in {looked}) and downloads are off: "
            f"fetch {spec.url} and save it as {cache_file}",
        )
    _download(submission, spec.url, cache_file)
    return ResolvedWeights(cache_file.resolve(), spec.sha256, "download")  # type: ignore[arg-type]


def _url_file_name(submission: Submission) -> str:
    assert submission.weights is not None and submission.weights.url is not None
    name = Path(urllib.parse.urlparse(submission.weights.url).path).name
    if not name:
        raise submission.error("weights.url", f"{submission.weights.url} names no file; add weights.file")
    return name


def _verified_sha256(submission: Submission, path: Path, source: WeightsSource) -> str:
    assert submission.weights is not None
    expected = submission.weights.sha256
    actual = sha256_file(path)
    if actual != expected:
        advice = {
            "cache": "delete it and run again to download it afresh",
            "model_zoo": "replace it with the released file",
            "manifest": "if these are new weights of yours, update weights.sha256 or pass them with --weights",
        }.get(source, "")
        raise submission.error(
            "weights.sha256", f"{path} has sha256 {actual}, expected {expected} ({source}); {advice}"
        )
    return actual


def _download(submission: Submission, url: str, destination: Path) -> None:
    """Fetch ``url`` into ``destination`` with pooch, which checks the sha256 and keeps nothing bad.

    pooch downloads into a temporary file beside the destination and moves it into place only when
    the hash matches, so the cache never holds a partial or wrong file.
    """
    expected = submission.weights.sha256  # type: ignore[union-attr]
    offline = f"fetch it yourself and save it as {destination} (or into the folder $ESR_MODEL_ZOO names)"
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{expected}",
            fname=destination.name,
            path=destination.parent,
            progressbar=True,
        )
    except ValueError as error:  # pooch: a hash mismatch (the download is already deleted), or a bad URL
        if "hash" not in str(error).lower():
            raise submission.error("weights.url", f"cannot download {url} ({error}); {offline}") from None
        found = re.search(r"got:? *'?([0-9a-f]{64})", str(error))
        actual = found.group(1) if found else "another hash"
        raise submission.error(
            "weights.sha256", f"{url} downloaded with sha256 {actual}, expected {expected}; nothing was saved"
        ) from None
    except (requests.RequestException, OSError) as error:
        raise submission.error("weights.url", f"cannot download {url} ({error}); {offline}") from error

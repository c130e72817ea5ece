"""esr-harness: benchmark harness and leaderboard reproducer for efficient x4 super-resolution."""

from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent

#: Files the harness ships as package data. In a checkout, ``harness/_bundled/submissions`` and
#: ``harness/_bundled/published`` are links to the repository's ``submissions/`` and
#: ``results/published/`` (where readers find them); a wheel carries copies of the files.
BUNDLED_SUBMISSIONS_DIR = (_PACKAGE / "_bundled" / "submissions").resolve()
PUBLISHED_DIR = (_PACKAGE / "_bundled" / "published").resolve()

#: The source checkout the package runs from, or None when it is installed from a wheel.
CHECKOUT: Path | None = _PACKAGE.parent if (_PACKAGE.parent / "pyproject.toml").is_file() else None

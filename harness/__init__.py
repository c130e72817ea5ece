"""esr-harness: benchmark harness and leaderboard reproducer for efficient x4 super-resolution."""

from pathlib import Path

__version__ = "0.1.0"

#: The checkout the package runs from (it is installed editable): bundled submissions and the
#: published tables live beside the package, not inside it.
REPO_ROOT = Path(__file__).resolve().parents[1]

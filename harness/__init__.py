"""esr-harness: benchmark harness and leaderboard reproducer for efficient x4 super-resolution."""

__version__ = "0.1.0"

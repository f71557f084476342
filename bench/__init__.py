"""Benchmarks: each script prints a table and writes JSON to bench/results/.

Run them as modules from the repository root (``python -m bench.cpu_runtime``): they import
the installed ``emostream`` package and this folder's helpers (``machine``, ``timing``).
"""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks run in (results go to ``REPO / "bench" / "results"``)."""

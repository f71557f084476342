"""Shared set-up: offline model loading, the hypothesis profile, and the fixtures of
tests/fixtures/ (one module per concept: model, services, worker, api)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fixtures.api import api_process  # noqa: E402, F401
from fixtures.model import classifier, data_dir, encoder, feature_cache, make_batch  # noqa: E402, F401
from fixtures.services import broker, redis_server, unique  # noqa: E402, F401
from fixtures.worker import processor, worker_process  # noqa: E402, F401
from hypothesis import settings as hypothesis_settings  # noqa: E402

# CI runs the same examples every time (a failure is then a regression, not a dice roll);
# HYPOTHESIS_PROFILE=explore searches afresh.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

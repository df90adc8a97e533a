"""The risk tests reuse the market model tests' helpers (tests/python/models/market_fixtures.py)."""

import sys
from pathlib import Path

MODELS_TESTS = Path(__file__).resolve().parents[1] / "models"
if str(MODELS_TESTS) not in sys.path:
    sys.path.insert(0, str(MODELS_TESTS))

"""The whole capture's book fold on the price grid (`book.rebuild`) equals the live fold on sorted lists,
to the bit, with `_GridSide.top`'s kept answer in use: every state's top levels and depths of all 6.5k
diffs, not only the first 12,000 lines' (test_book_grid.py). No database: a few seconds."""

from __future__ import annotations

from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS
from tests.python.microstructure import capture
from tests.python.microstructure.test_book_grid import _assert_same_fold


def test_whole_capture_fold_equals_sorted_lists(monkeypatch):
    kept = {"calls": 0, "kept": 0}
    top = bookmod._GridSide.top

    def counting_top(self, n):
        kept["calls"] += 1
        kept["kept"] += self._top is not None and self._top[0] == n
        return top(self, n)

    monkeypatch.setattr(bookmod._GridSide, "top", counting_top)
    batch = TICK_FORMATS["binance-ws"](capture.CAPTURE)
    states = _assert_same_fold(batch)
    assert len(states) == batch.events["depth_updates"] - 4  # the diffs before the snapshot are in it
    # the kept answer was given (about 1 call in 5), so the equality above covers it
    assert kept["calls"] == 2 * len(states) and kept["kept"] > 0.1 * kept["calls"]

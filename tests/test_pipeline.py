"""pipeline.ahead: items in order, drawn a fixed number ahead, queued work cancelled."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from qmnist_tfds import pipeline


def test_items_come_in_order_each_drawn_count_ahead():
    drawn = []

    def items():
        for i in range(6):
            drawn.append(i)
            yield i

    seen = []
    for item in pipeline.ahead(items(), 2):
        seen.append((item, len(drawn)))
    # Item i is yielded once items up to i + 2 have been drawn (all, near the end).
    assert seen == [(0, 3), (1, 4), (2, 5), (3, 6), (4, 6), (5, 6)]
    assert list(pipeline.ahead(range(3), 0)) == [0, 1, 2]
    assert list(pipeline.ahead(range(3), 10)) == [0, 1, 2]
    assert list(pipeline.ahead([], 2)) == []


def test_work_runs_ahead_and_what_was_queued_is_cancelled_when_the_caller_stops():
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        futures = [pool.submit(gate.wait)] + [pool.submit(int, i) for i in range(4)]
        lists = [[future] for future in futures[1:3]]
        stream = pipeline.ahead([futures[0], *lists, *futures[3:]], 3)
        assert next(stream) is futures[0]  # three more drawn: two lists and a future
        stream.close()
        gate.set()
    assert [f.cancelled() for f in futures] == [False, True, True, True, False]
    assert futures[4].result() == 3

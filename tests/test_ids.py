from __future__ import annotations

from burnbox.ids import MessageIds
from tests.helpers import FakeClock


def test_ids_are_sortable_and_strictly_increasing(clock: FakeClock) -> None:
    ids = MessageIds(clock)
    batch = [ids() for _ in range(1000)]  # all in one (fake) millisecond
    clock.advance(milliseconds=1)
    later = ids()
    assert batch == sorted(batch)
    assert len(set(batch)) == 1000
    assert later > batch[-1]
    assert all(len(i) == 24 and i.isalnum() and i.isupper() for i in batch)


def test_time_going_back_does_not_break_order(clock: FakeClock) -> None:
    ids = MessageIds(clock)
    first = ids()
    clock.advance(seconds=-5)
    assert ids() > first

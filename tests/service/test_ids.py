import time
import uuid

from models.few import FEW_ROWS
from service.ids import new_id, new_ids


def test_ids_are_uuid7_in_32_hex_digits() -> None:
    for value in [new_id(), *new_ids(FEW_ROWS), *new_ids(200)]:  # both ways of making them
        assert len(value) == 32
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == value


def test_a_batch_of_ids_is_distinct() -> None:
    assert len(set(new_ids(5000))) == 5000


def test_ids_made_later_sort_after_earlier_ones() -> None:
    # The point of the format: new audit keys land at the end of the index.
    earlier = new_ids(100)
    time.sleep(0.002)
    later = new_id()
    assert all(value < later for value in earlier)
    assert int(later[:12], 16) <= time.time_ns() // 1_000_000

"""Progress pacing of the per-epoch training loop."""

import pytest

from lesson.experiments.fitting import progress_due


@pytest.mark.parametrize(
    ("total", "expected"),
    [(2, [1, 2]), (20, list(range(1, 21))), (100, list(range(5, 101, 5))), (7, list(range(1, 8)))],
)
def test_progress_lines_are_paced_and_include_the_last_epoch(total, expected):
    assert [e for e in range(1, total + 1) if progress_due(e, total)] == expected
    assert progress_due(total, total)


def test_progress_of_an_odd_epoch_count_ends_on_the_last_epoch():
    due = [e for e in range(1, 31) if progress_due(e, 30)]
    assert due[-1] == 30 and len(due) <= 21

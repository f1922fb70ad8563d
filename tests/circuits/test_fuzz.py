"""A fast subset of the fuzz suite (``python -m bench.fuzz`` runs 10,000 cases per target).

Each target must answer every generated input with our named error or a result:
no other exception, no case over 2 s.
"""

from __future__ import annotations

import pytest

from bench.fuzz import TARGETS, run_target

CASES = 200


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_finds_no_crash_and_no_hang(target: str) -> None:
    report = run_target(target, CASES)
    assert report.cases == CASES
    assert (report.crashes, report.hangs) == (0, 0), report.first
    assert report.max_s < 2.0

"""What a job asks its scheduler for on each attempt, and what its log says about it."""

from __future__ import annotations

import pytest

from lesionflow.resources import NETWORK_JOB_MIN_MEM_MB, describe, grown, too_little_memory


@pytest.mark.parametrize("attempt,expected", [(1, 4000), (2, 6000), (3, 9000), (4, 10000), (9, 10000)])
def test_resources_grow_with_each_retry_up_to_the_maximum(attempt, expected):
    assert grown(4000, attempt, factor=1.5, maximum=10000) == expected


def test_a_maximum_below_the_configured_amount_never_asks_for_less():
    assert grown(4000, 3, factor=2.0, maximum=1000) == 4000
    assert grown(30, 2, factor=1.0, maximum=100) == 30


def test_the_log_line_names_the_attempt_and_what_was_asked():
    assert (
        describe({"attempt": 2, "mem_mb": 6000, "runtime": 60, "gpu": 1, "_cores": 2})
        == "attempt 2: asked for 6000 MB of memory, 60 min, 1 GPU"
    )
    assert describe({"mem_mb": 1000}) == "attempt 1: asked for 1000 MB of memory"


def test_a_network_job_with_too_little_memory_is_warned_about():
    warning = too_little_memory({"gpu": 1, "mem_mb": 800})
    assert warning.startswith("mem_mb=800 is less than a network job needs to start TensorFlow")
    assert too_little_memory({"gpu": 1, "mem_mb": NETWORK_JOB_MIN_MEM_MB}) is None
    assert too_little_memory({"mem_mb": 800}) is None  # not a network job: a cache or a check

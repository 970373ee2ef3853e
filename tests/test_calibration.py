"""The machine's speed on record: run.json's host holds a short calibration of one core and of
memory bandwidth, and two calibrations say how far apart two machines are."""

from __future__ import annotations

import pytest

from harness.contract.manifest import HostSpeed
from harness.run.provenance import host


def test_the_host_facts_hold_a_calibration_of_this_machine():
    speed = host()["speed"]
    assert isinstance(speed, HostSpeed)
    assert speed.single_core_mops > 1 and speed.memory_gbps > 0.5


def test_the_ratio_is_the_measure_they_differ_most_on_either_way():
    slow, fast = HostSpeed(single_core_mops=20, memory_gbps=10), HostSpeed(
        single_core_mops=46, memory_gbps=11)
    assert fast.ratio(slow) == pytest.approx(2.3) and slow.ratio(fast) == pytest.approx(2.3)
    assert slow.ratio(slow) == 1.0

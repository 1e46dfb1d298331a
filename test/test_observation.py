"""Observation gate: only fresh, stamped, time-consistent inputs make an observation."""

import math
import threading

import pytest

from robot_policy_ros.core.observation import JOINTS, ObservationGate


def _gate(max_age: float = 0.2) -> ObservationGate:
    return ObservationGate(["front", "wrist"], max_age_s=max_age)


def _fill(gate: ObservationGate, t_front=10.0, t_wrist=10.0, t_joints=10.0) -> None:
    gate.set_camera("front", t_front, "F")
    gate.set_camera("wrist", t_wrist, "W")
    gate.set_joints(t_joints, "J")


def test_fresh_inputs_make_an_observation_stamped_with_the_oldest_input():
    gate = _gate()
    _fill(gate, t_front=10.00, t_wrist=9.95, t_joints=10.05)
    result = gate.snapshot(now=10.1)
    assert result.ok and result.reason == ""
    assert result.stamp == pytest.approx(9.95)
    assert result.images == {"front": "F", "wrist": "W"} and result.joints == "J"
    assert result.ages["wrist"] == pytest.approx(0.15)
    assert result.max_age == pytest.approx(0.15)


def test_missing_camera_is_named():
    gate = _gate()
    gate.set_camera("front", 10.0, "F")
    gate.set_joints(10.0, "J")
    result = gate.snapshot(now=10.0)
    assert not result.ok
    assert "no camera 'wrist' message received yet" in result.reason
    assert math.isnan(result.ages["wrist"]) and math.isnan(result.max_age)


def test_stale_camera_blocks_and_says_how_old():
    gate = _gate(0.2)
    _fill(gate, t_front=9.5)
    result = gate.snapshot(now=10.0)
    assert not result.ok
    assert "camera 'front' is 0.500 s old (max_observation_age_s 0.2)" in result.reason
    assert result.images == {} and result.joints is None
    assert math.isnan(result.stamp)


def test_stale_joint_state_blocks():
    gate = _gate(0.2)
    _fill(gate, t_joints=9.0)
    result = gate.snapshot(now=10.0)
    assert not result.ok and f"{JOINTS} is 1.000 s old" in result.reason


def test_all_problems_reported_together():
    gate = _gate(0.2)
    _fill(gate, t_front=1.0, t_joints=2.0)
    reason = gate.snapshot(now=10.0).reason
    assert "camera 'front'" in reason and JOINTS in reason and "wrist" not in reason


def test_unstamped_message_is_rejected_with_reason():
    gate = _gate()
    _fill(gate, t_wrist=0.0)
    result = gate.snapshot(now=0.1)
    assert not result.ok and "camera 'wrist' header.stamp is zero" in result.reason


def test_future_stamp_beyond_tolerance_is_a_clock_mismatch():
    gate = ObservationGate(["front"], max_age_s=0.2, max_future_s=0.05)
    gate.set_camera("front", 10.0, "F")
    gate.set_joints(10.0, "J")
    assert gate.snapshot(now=9.97).ok
    result = gate.snapshot(now=9.0)
    assert not result.ok and "in the future" in result.reason and "use_sim_time" in result.reason


def test_new_frame_makes_gate_pass_again():
    gate = _gate(0.2)
    _fill(gate)
    assert not gate.snapshot(now=11.0).ok
    _fill(gate, 10.9, 10.9, 10.95)
    assert gate.snapshot(now=11.0).ok


def test_clear_forgets_everything():
    gate = _gate()
    _fill(gate)
    gate.clear()
    assert not gate.snapshot(now=10.0).ok
    assert gate.latest_stamp("front") is None


def test_unknown_camera_rejected():
    with pytest.raises(KeyError, match="unknown camera 'side'"):
        _gate().set_camera("side", 1.0, None)


def test_bad_max_age_rejected():
    with pytest.raises(ValueError, match="max_age_s"):
        ObservationGate(["front"], max_age_s=0.0)


def test_concurrent_updates_and_snapshots_are_consistent():
    gate = ObservationGate(["front"], max_age_s=1e6)
    stop = threading.Event()

    def writer():
        t = 1.0
        while not stop.is_set():
            t += 0.001
            gate.set_camera("front", t, ("F", t))
            gate.set_joints(t, ("J", t))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        checked = 0
        while checked < 500:
            result = gate.snapshot(now=1e3)
            if result.ok:  # the stamp belongs to the payloads of the same snapshot
                payload_stamps = (result.images["front"][1], result.joints[1])
                assert result.stamp == min(payload_stamps)
                checked += 1
    finally:
        stop.set()
        thread.join()

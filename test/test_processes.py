"""Process helpers: DDS domain leases keep concurrent runs apart."""

import os
import subprocess
import sys

from robot_policy_ros.processes import isolated_ros_env, lease_domain_id


def test_leased_domain_is_not_leased_twice():
    first = lease_domain_id([231, 232])
    second = lease_domain_id([231, 232])
    try:
        assert {first.domain_id, second.domain_id} == {231, 232}
    finally:
        first.release()
        second.release()


def test_released_domain_can_be_leased_again():
    lease = lease_domain_id([230])
    lease.release()
    again = lease_domain_id([230])
    assert again.domain_id == 230
    again.release()


def test_lease_held_by_another_process_is_skipped():
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from robot_policy_ros.processes import lease_domain_id;"
            "held = lease_domain_id([229]); print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lease = lease_domain_id([229, 228])
        assert lease.domain_id == 228
        lease.release()
    finally:
        holder.kill()
        holder.wait()


def test_isolated_env_keeps_discovery_on_localhost():
    env = isolated_ros_env(17)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_DOMAIN_ID"] == "17"

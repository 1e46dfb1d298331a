"""The generated parameter reference and the rclpy-free parameter tables."""

from __future__ import annotations

import subprocess
import sys

from robot_policy_ros.params import NODE_TABLES, node_table
from robot_policy_ros.params.reference import DOC, render


def test_parameter_reference_is_current():
    assert DOC.read_text() == render(), (
        "doc/parameters.md is stale: run python -m robot_policy_ros.params.reference --write"
    )


def test_every_parameter_has_a_description_and_a_documented_row():
    text = render()
    for node in NODE_TABLES:
        specs = node_table(node)
        assert specs, node
        for spec in specs:
            assert spec.description
            assert f"| `{spec.name}` |" in text


def test_param_tables_do_not_import_rclpy():
    code = (
        "import sys\n"
        "import robot_policy_ros.params.sim_robot, robot_policy_ros.params.scripted_expert\n"
        "import robot_policy_ros.params.managed\n"
        "assert 'rclpy' not in sys.modules, sorted(m for m in sys.modules if 'rcl' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The ament_python layout: what colcon installs, and where ``ros2 run`` finds it."""

from __future__ import annotations

import configparser
import importlib
import runpy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = "robot_policy_ros"


@pytest.fixture(scope="module")
def setup_kwargs() -> dict:
    captured: dict = {}
    original = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
    return captured


def test_share_files_installed_where_ament_expects(setup_kwargs):
    files = {dest: set(srcs) for dest, srcs in setup_kwargs["data_files"]}
    assert "resource/robot_policy_ros" in files["share/ament_index/resource_index/packages"]
    assert "package.xml" in files["share/robot_policy_ros"]
    launch = {p.relative_to(ROOT).as_posix() for p in (ROOT / "launch").glob("*.launch.py")}
    assert launch and launch <= files["share/robot_policy_ros/launch"]
    for yaml in (ROOT / "config").rglob("*.yaml"):
        rel = yaml.relative_to(ROOT)
        assert rel.as_posix() in files[f"share/robot_policy_ros/{rel.parent.as_posix()}"]


def test_scripts_go_to_lib_package_dir_for_ros2_run():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["develop"]["script_dir"] == "$base/lib/robot_policy_ros"
    assert cfg["install"]["install_scripts"] == "$base/lib/robot_policy_ros"


def test_every_console_script_has_a_main(setup_kwargs):
    scripts = setup_kwargs["entry_points"]["console_scripts"]
    names = {s.split("=")[0].strip() for s in scripts}
    assert {"policy_node", "command_streamer", "camera_node", "sim_robot"} <= names
    for script in scripts:
        target = script.split("=")[1].strip()
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_every_node_module_is_a_console_script_of_its_name(setup_kwargs):
    """``ros2 run robot_policy_ros X`` works for each node under robot_policy_ros/nodes."""
    scripts = {s.replace(" ", "") for s in setup_kwargs["entry_points"]["console_scripts"]}
    nodes = ROOT / PACKAGE_DIR / "nodes"
    mains = [p.stem for p in nodes.glob("*.py") if "\ndef main(" in p.read_text()]
    assert "episode_driver" in mains
    for name in mains:
        assert f"{name}=robot_policy_ros.nodes.{name}:main" in scripts, name


def test_package_xml_is_format_3_ament_python_with_runtime_deps():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "robot_policy_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    for dep in (
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "trajectory_msgs",
        "diagnostic_msgs",
        "std_srvs",
        "launch",
        "launch_ros",
        "python3-numpy",
        "python3-opencv",
    ):
        assert dep in deps, dep


def test_every_source_folder_is_an_installed_package(setup_kwargs):
    """A non-editable install copies only the packages find_packages lists: each folder of
    modules (launch_support/ included, which the launch files import) must be one."""
    packages = set(setup_kwargs["packages"])
    folders = {p.parent.relative_to(ROOT) for p in (ROOT / PACKAGE_DIR).rglob("*.py")}
    assert {".".join(f.parts) for f in folders} <= packages
    assert "robot_policy_ros.launch_support" in packages


# What the torch-free nodes and the launch files import. ``sys.modules['torch'] = None``
# makes any ``import torch`` (direct or transitive) raise ImportError, so this fails on
# the first module that reaches for torch, naming it in the traceback.
TORCH_FREE_MODULES = (
    "robot_policy_ros.checkpoint",
    "robot_policy_ros.checkpoint.config",
    "robot_policy_ros.checkpoint.files",
    "robot_policy_ros.nodes.command_streamer",
    "robot_policy_ros.launch_support",
)


@pytest.mark.parametrize("module", TORCH_FREE_MODULES)
def test_streamer_and_launch_modules_import_without_torch(module):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; "
        f"import importlib; importlib.import_module({module!r}); "
        "print('torch-free')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "torch-free"


def test_policies_do_not_import_the_cli():
    """The CLI uses the policies, never the reverse (the latency benchmark lives in cli/)."""
    import ast

    for path in sorted((ROOT / PACKAGE_DIR / "policies").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("robot_policy_ros.cli"), (path, node.lineno, name)


def test_python_m_cli_runs_the_console_script(setup_kwargs):
    """``python -m robot_policy_ros.cli`` (what the launch glue runs) is ``robot-policy``."""
    import subprocess
    import sys

    scripts = dict(
        (s.split("=")[0].strip(), s.split("=")[1].strip())
        for s in setup_kwargs["entry_points"]["console_scripts"]
    )
    assert scripts["robot-policy"] == "robot_policy_ros.cli:main"
    out = subprocess.run(
        [sys.executable, "-m", "robot_policy_ros.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: robot-policy")
    for command in ("init-checkpoint", "inspect", "import-lerobot", "predict", "benchmark"):
        assert command in out.stdout

"""config/fastdds.xml: shipped, valid, and used unless the user chose a profile of their own."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from robot_policy_ros.core.transport import PROFILE_VARS, dds_profile_env, fastdds_profile_path
from robot_policy_ros.processes import isolated_ros_env

NS = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def test_shipped_profile_has_a_16mb_shared_memory_segment_and_keeps_udp() -> None:
    root = ET.parse(fastdds_profile_path()).getroot()
    shm = [
        t
        for t in root.iterfind(".//f:transport_descriptor", NS)
        if t.findtext("f:type", namespaces=NS) == "SHM"
    ]
    assert len(shm) == 1 and int(shm[0].findtext("f:segment_size", namespaces=NS)) >= 16 * 2**20
    participant = root.find(".//f:participant", NS)
    assert participant.get("is_default_profile") == "true"
    used = [e.text for e in participant.iterfind(".//f:userTransports/f:transport_id", NS)]
    types = {
        t.findtext("f:transport_id", namespaces=NS): t.findtext("f:type", namespaces=NS)
        for t in root.iterfind(".//f:transport_descriptor", NS)
    }
    assert sorted(types[u] for u in used) == ["SHM", "UDPv4"]  # other machines still reachable


def test_profile_env_names_the_shipped_file_for_fast_dds() -> None:
    env = dds_profile_env(environ={})
    assert set(env) == set(PROFILE_VARS)
    assert all(v == str(fastdds_profile_path()) for v in env.values())
    assert dds_profile_env(environ={"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}) == env


def test_users_own_profile_is_never_overridden() -> None:
    for var in PROFILE_VARS:
        assert dds_profile_env(environ={var: "/etc/my_profile.xml"}) == {}
    env = isolated_ros_env(7, FASTRTPS_DEFAULT_PROFILES_FILE="/etc/my_profile.xml")
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/etc/my_profile.xml"


def test_no_fast_dds_profile_for_another_rmw() -> None:
    assert dds_profile_env(environ={"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}


def test_demo_and_test_nodes_get_the_profile(monkeypatch) -> None:
    for var in PROFILE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("RMW_IMPLEMENTATION", raising=False)
    env = isolated_ros_env(7)
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile_path())

"""BagWriter: every message handed to it is in the bag; killed writers are recoverable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader

from robot_policy_ros.data.bag_writer import (
    BagWriteError,
    BagWriter,
    bag_is_complete,
    default_typestore,
    make_qos,
    recover_bag,
)

REPO = Path(__file__).resolve().parents[1]


def _joint_state(i: int) -> bytes:
    ts = default_typestore()
    t = ts.types
    msg = t["sensor_msgs/msg/JointState"](
        header=t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=i, nanosec=500), frame_id=""
        ),
        name=["a", "b"],
        position=np.array([float(i), -float(i)]),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )
    return bytes(ts.serialize_cdr(msg, "sensor_msgs/msg/JointState"))


def _string(text: str) -> bytes:
    ts = default_typestore()
    return bytes(
        ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")
    )


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_written_message_is_in_the_bag(tmp_path: Path, storage: str) -> None:
    bag = tmp_path / "bag"
    writer = BagWriter(bag, storage).open()
    writer.add_topic("/joint_states", "sensor_msgs/msg/JointState", [make_qos()])
    writer.add_topic("/chatter", "std_msgs/msg/String", [make_qos(reliable=False)])
    for i in range(250):
        assert writer.write("/joint_states", _joint_state(i), 1_000 + i)
        if i % 2 == 0:
            assert writer.write("/chatter", _string(f"m{i}"), 1_000 + i)
    stats = writer.close()

    assert stats.complete and stats.lost == 0
    assert stats.topics["/joint_states"].written == 250
    assert stats.topics["/chatter"].written == 125
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == storage
    assert meta["version"] == 9
    assert meta["message_count"] == 375
    with AnyReader([bag], default_typestore=default_typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {"/joint_states": 250, "/chatter": 125}
        conn = next(c for c in reader.connections if c.topic == "/joint_states")
        positions = [
            reader.deserialize(raw, conn.msgtype).position[0]
            for _, _, raw in reader.messages(connections=[conn])
        ]
    assert positions == [float(i) for i in range(250)]


def test_bag_dir_that_exists_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bag").mkdir()
    with pytest.raises(BagWriteError, match="exists"):
        BagWriter(tmp_path / "bag").open()


def test_unknown_message_type_is_rejected_at_add_topic(tmp_path: Path) -> None:
    writer = BagWriter(tmp_path / "bag").open()
    with pytest.raises(BagWriteError, match="no_such_pkg/msg/Thing"):
        writer.add_topic("/x", "no_such_pkg/msg/Thing")
    writer.close()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    writer = BagWriter(tmp_path / "bag", max_queue=5).open()
    writer.add_topic("/chatter", "std_msgs/msg/String")
    release = threading.Event()
    storage_writer = writer._writer  # the rosbags Writer owned by the writer thread
    real_write = storage_writer.write

    def slow_write(*args, **kwargs):
        release.wait(10)
        return real_write(*args, **kwargs)

    storage_writer.write = slow_write  # simulate a stalled disk
    accepted = [writer.write("/chatter", _string(str(i)), i + 1) for i in range(8)]
    assert accepted.count(True) == 5 and accepted[5:] == [False, False, False]
    release.set()
    stats = writer.close()
    counts = stats.topics["/chatter"]
    assert (counts.received, counts.written, counts.dropped) == (8, 5, 3)
    assert stats.lost == 3 and "dropped 3" in stats.summary()


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from robot_policy_ros.data.bag_writer import BagWriter, default_typestore
    ts = default_typestore()
    w = BagWriter(sys.argv[1], sys.argv[2], flush_interval_s=0.05).open()
    w.add_topic("/chatter", "std_msgs/msg/String")
    for i in range(400):
        w.write("/chatter", ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=f"m{i}"),
                                             "std_msgs/msg/String"), i + 1)
    w.flush()
    while w.pending():
        time.sleep(0.01)
    time.sleep(0.3)  # a flush interval passes: the first 400 are on disk
    open(os.path.join(sys.argv[1], "episode.json"), "w").write('{"seed": 7}')
    for i in range(50):  # these may be lost: killed before the next flush
        w.write("/chatter", b"\\0" * 64, 10_000 + i)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_hard_killed_writer_bag_is_recovered(tmp_path: Path, storage: str) -> None:
    bag = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(bag), storage],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert not bag_is_complete(bag)  # no metadata.yaml after SIGKILL

    report = recover_bag(bag)

    assert report["recovered"] >= 400
    assert bag_is_complete(bag)
    assert json.loads((bag / "episode.json").read_text()) == {"seed": 7}
    with Reader(bag) as reader:
        assert reader.message_count == report["recovered"]
        first = [raw for _, _, raw in reader.messages()][:400]
    ts = default_typestore()
    texts = [ts.deserialize_cdr(raw, "std_msgs/msg/String").data for raw in first]
    assert texts == [f"m{i}" for i in range(400)]
    assert recover_bag(bag)["already_complete"]


def test_lean_mcap_storage_writes_the_same_bytes_as_rosbags(tmp_path: Path) -> None:
    """The MCAP storage BagWriter uses (one copy per message) writes byte for byte the file
    rosbags' own McapWriter writes, big and small messages, chunks closed by size and by
    flushes alike."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robot_policy_ros.data.bag_writer import _Writer

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, 700_000, dtype=np.uint8).tobytes()
    files = []
    for name, cls in (("rosbags", Writer), ("lean", _Writer)):
        path = tmp_path / name / "bag"  # the same file name: the MCAP metadata names it
        path.parent.mkdir()
        writer = cls(path, version=9, storage_plugin=StoragePlugin.MCAP)
        writer.open()
        js = writer.add_connection(
            "/joint_states", "sensor_msgs/msg/JointState", typestore=default_typestore()
        )
        cam = writer.add_connection("/cam", "std_msgs/msg/String", typestore=default_typestore())
        for i in range(40):
            writer.write(js, 1_000 + 2 * i, _joint_state(i))
            if i % 3 == 0:
                writer.write(cam, 1_001 + 2 * i, image[i:] + bytes(i))
            if i == 20:
                writer.storage.close_chunk()  # as BagWriter's flush does
        writer.write(js, 5_000, memoryview(_joint_state(99)))
        writer.close()
        files.append((path / "bag.mcap").read_bytes())
    assert len(files[0]) > 4_000_000  # several chunks of ~1 MB
    assert files[1] == files[0]

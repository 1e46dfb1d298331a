"""BagWriter under storage faults: full disk, file size limit, removed or renamed bag folder.

ENOSPC is real: the storage file's descriptor is pointed at ``/dev/full`` (dup2), so the
next write fails exactly as on a full disk. EFBIG comes from RLIMIT_FSIZE in a child
process (SIGXFSZ ignored there, as bag_recorder does). Every bag left behind is read with
rosbags and, for MCAP, with the independent ``mcap`` reader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from robot_policy_ros.data.bag_writer import (
    BagWriteError,
    BagWriter,
    bag_is_complete,
    default_typestore,
    recover_bag,
)

REPO = Path(__file__).resolve().parents[1]
TOPIC = "/chatter"


def _string(text: str) -> bytes:
    ts = default_typestore()
    return bytes(
        ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")
    )


def _texts(bag: Path) -> list[str]:
    """The String messages of the bag, read by rosbags."""
    with AnyReader([bag], default_typestore=default_typestore()) as reader:
        return [reader.deserialize(raw, c.msgtype).data for c, _, raw in reader.messages()]


def _mcap_texts(bag: Path) -> list[str]:
    """The same, read by the independent `mcap` + `mcap-ros2-support` packages."""
    from mcap_ros2.reader import read_ros2_messages

    (file,) = sorted(bag.glob("*.mcap"))
    return [m.ros_msg.data for m in read_ros2_messages(str(file))]


def _fill_disk(writer: BagWriter) -> None:
    """Point the storage file's descriptor at /dev/full: every later write gets ENOSPC."""
    fd = writer._writer.storage.bio.fileno()  # the MCAP file, owned by the writer thread
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, fd)
    finally:
        os.close(full)


def _writer(path: Path, storage: str = "mcap", **kwargs) -> tuple[BagWriter, threading.Event]:
    failed = threading.Event()
    writer = BagWriter(path, storage, flush_interval_s=0, on_error=failed.set, **kwargs).open()
    writer.add_topic(TOPIC, "std_msgs/msg/String")
    return writer, failed


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_mid_write_keeps_the_flushed_part_as_a_valid_bag(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    writer, failed = _writer(bag)
    for i in range(100):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    assert writer.flush(wait=True, timeout=10)
    _fill_disk(writer)
    for i in range(100, 150):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    assert not writer.flush(wait=True, timeout=10)  # the flush hits ENOSPC
    assert failed.wait(10)
    assert not writer.write(TOPIC, _string("late"), 5_000)  # refused, counted as failed
    stats = writer.close()

    assert "No space left on device (ENOSPC)" in stats.error
    assert str(bag / "bag.mcap") in stats.error
    assert "closed" in stats.outcome and "100 messages flushed" in stats.outcome
    assert "50 written after the last flush" in stats.outcome
    counts = stats.topics[TOPIC]
    assert (counts.received, counts.written, counts.failed) == (151, 100, 51)
    assert stats.complete and bag_is_complete(bag)
    expected = [f"m{i}" for i in range(100)]
    assert _texts(bag) == expected
    assert _mcap_texts(bag) == expected


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_at_close_keeps_the_flushed_part_as_a_valid_bag(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    writer, failed = _writer(bag)
    for i in range(40):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    assert writer.flush(wait=True, timeout=10)
    for i in range(40, 70):  # still in the open chunk when the disk fills
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    while writer.pending():
        threading.Event().wait(0.01)
    _fill_disk(writer)
    stats = writer.close()

    assert failed.is_set()
    assert stats.error.startswith(f"cannot close bag file {bag / 'bag.mcap'}")
    assert "(ENOSPC)" in stats.error
    assert stats.topics[TOPIC].written == 40 and stats.lost == 30
    assert stats.complete
    assert _texts(bag) == _mcap_texts(bag) == [f"m{i}" for i in range(40)]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_directory_deleted_mid_write_is_reported_and_nothing_recreated(
    tmp_path: Path, storage: str
) -> None:
    bag = tmp_path / "bag"
    writer, failed = _writer(bag, storage)
    for i in range(20):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    assert writer.flush(wait=True, timeout=10)
    shutil.rmtree(bag)
    writer.write(TOPIC, _string("m20"), 2_000)
    assert not writer.flush(wait=True, timeout=10)
    assert failed.wait(10)
    stats = writer.close()

    assert "disappeared while recording" in stats.error and str(bag) in stats.error
    assert "No such file or directory (ENOENT)" in stats.error
    assert "deleted" in stats.outcome
    assert stats.written == 0 and stats.lost == stats.received == 21
    assert not stats.complete
    assert not bag.exists()  # the writer did not bring the directory back


def test_bag_directory_renamed_mid_write_is_closed_where_it_now_is(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    writer, failed = _writer(bag)
    for i in range(20):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    assert writer.flush(wait=True, timeout=10)
    moved = tmp_path / "moved"
    bag.rename(moved)
    assert not writer.flush(wait=True, timeout=10)
    assert failed.wait(10)
    stats = writer.close()

    assert "disappeared while recording" in stats.error
    assert str(moved) in stats.outcome
    assert stats.path == moved and stats.complete and stats.lost == 0
    assert bag_is_complete(moved) and not bag.exists()
    # the file keeps its name bag.mcap; rosbags reads it through metadata.yaml
    assert _texts(moved) == _mcap_texts(moved) == [f"m{i}" for i in range(20)]


def test_bag_under_a_regular_file_is_refused_with_the_errno(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    bag = tmp_path / "afile" / "bags" / "episode_000000"
    with pytest.raises(BagWriteError) as info:
        BagWriter(bag).open()
    text = str(info.value)
    assert str(bag) in text and "Not a directory (ENOTDIR)" in text


# EFBIG from RLIMIT_FSIZE, in a child process (the limit applies to every file it writes).
_FSIZE_SCRIPT = textwrap.dedent(
    """
    import json, resource, signal, sys
    from robot_policy_ros.data.bag_writer import BagWriter, BagWriteError, default_typestore
    bag, storage, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    ts = default_typestore()
    def msg(i):
        text = f"m{i}:" + "x" * 20000
        return ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        w = BagWriter(bag, storage, flush_interval_s=0).open()
    except BagWriteError as exc:
        print(json.dumps({"open_error": str(exc)}))
        sys.exit(0)
    w.add_topic("/chatter", "std_msgs/msg/String")
    flushed = 0
    for i in range(400):
        w.write("/chatter", msg(i), 1000 + i)
        if i % 10 == 9:
            if not w.flush(wait=True, timeout=20):
                break
            flushed = i + 1
    stats = w.close()
    print(json.dumps({"flushed": flushed, **stats.as_dict()}))
    """
)


def _run_limited(bag: Path, storage: str, limit: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _FSIZE_SCRIPT, str(bag), storage, str(limit)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_file_size_limit_mid_write_keeps_every_flushed_message(
    tmp_path: Path, storage: str
) -> None:
    bag = tmp_path / "bag"
    report = _run_limited(bag, storage, 1_000_000)

    assert "File too large (EFBIG)" in report["error"], report  # sqlite3: "likely cause"
    flushed = report["flushed"]
    assert flushed >= 10, report
    texts = _texts(bag) if bag_is_complete(bag) else None
    if texts is None:  # too full even to close: what was flushed is recoverable
        assert "--recover" in report["outcome"], report
        recover_bag(bag)
        texts = _texts(bag)
    assert [t.split(":")[0] for t in texts] == [f"m{i}" for i in range(report["written"])]
    assert report["written"] >= flushed
    assert report["written"] + report["lost"] == report["received"]
    if storage == "mcap":
        assert report["complete"], report
        assert len(_mcap_texts(bag)) == report["written"]


def test_file_size_limit_at_open_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    report = _run_limited(bag, "mcap", 4)  # not even the MCAP header fits
    assert "cannot create bag" in report["open_error"]
    assert "File too large (EFBIG)" in report["open_error"]
    assert not bag.exists()


def test_metadata_that_cannot_be_written_leaves_a_complete_mcap_and_says_so(
    tmp_path: Path,
) -> None:
    bag = tmp_path / "bag"
    writer, failed = _writer(bag)
    for i in range(30):
        writer.write(TOPIC, _string(f"m{i}"), 1_000 + i)
    (bag / "metadata.yaml.tmp").mkdir()  # rosbags writes metadata.yaml through this name
    stats = writer.close()

    assert failed.is_set()
    assert "Is a directory (EISDIR)" in stats.error and "cannot close" in stats.error
    assert "all its messages" in stats.outcome and "--recover" in stats.outcome
    assert stats.written == 30 and stats.lost == 0 and not stats.complete
    assert _mcap_texts(bag) == [f"m{i}" for i in range(30)]  # the MCAP file is complete
    shutil.rmtree(bag / "metadata.yaml.tmp")
    assert recover_bag(bag)["recovered"] == 30
    assert _texts(bag) == [f"m{i}" for i in range(30)]

"""bag_recorder bags checked by an independent reader, a hard kill, and storage faults.

Storage faults are real errors in a real recorder process: a file size limit set on it
with prlimit (EFBIG, what a full disk's ENOSPC looks like to the writer), a regular file
where the output folder was, and the output folder deleted mid-run.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from robot_policy_ros.data.bag_writer import bag_is_complete, recover_bag

pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray
from ros_test_utils import spin_until
from std_msgs.msg import String
from test_bag_recorder import MODULE, Harness, _bag_counts, _start_recorder

pytestmark = pytest.mark.ros

FLUSH_S = 0.2


def test_bag_readable_by_independent_mcap_reader(start_node, rclpy_context, tmp_path: Path):
    """The `mcap` + `mcap-ros2-support` packages (not rosbags) read topics, counts, contents."""
    from mcap_ros2.reader import read_ros2_messages

    topics = ["/rec_mcap/chatter", "/rec_mcap/joint_states"]
    proc = _start_recorder(
        start_node, tmp_path, topics, "-p", "storage:=mcap", "-p", "episode_topic:=''"
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        started = h.call("start")
        assert started.success, started.message
        h.publish(n_chatter=50, n_joints=40)
        h.wait_received({topics[0]: 50, topics[1]: 40})
        assert h.call("stop").success
    finally:
        h.close()
    files = sorted(Path(started.message).glob("*.mcap"))
    assert len(files) == 1
    chatter, joints = [], []
    for m in read_ros2_messages(str(files[0])):
        (chatter if m.channel.topic == topics[0] else joints).append(m)
    assert {m.channel.topic for m in chatter + joints} == set(topics)
    assert [m.ros_msg.data for m in chatter] == [f"m{i}" for i in range(50)]
    assert len(joints) == 40
    for i, m in enumerate(joints):
        assert list(m.ros_msg.name) == ["j1", "j2"]
        assert list(m.ros_msg.position) == [float(i), 2.0 * i]
        assert m.ros_msg.header.stamp.sec == 100 + i
    assert proc.alive()


def test_sigkill_mid_episode_loses_at_most_the_last_flush_interval(
    start_node, rclpy_context, tmp_path: Path
):
    """Stated bound: a hard kill loses only what arrived in the last ``flush_interval_s``.

    Everything received more than one flush interval before the kill is on disk, and
    ``bag_recorder --recover`` (recover_bag) turns the partial bag into a complete one.
    """
    topics = ["/rec_kill/chatter", "/rec_kill/joint_states"]
    proc = _start_recorder(
        start_node,
        tmp_path,
        topics,
        "-p",
        "autostart:=true",
        "-p",
        "episode_topic:=''",
        "-p",
        f"flush_interval_s:={FLUSH_S}",
    )
    h = Harness(rclpy_context, topics)
    try:
        h.wait_matched()
        h.publish(n_chatter=120, n_joints=80)
        h.wait_received({topics[0]: 120, topics[1]: 80})
    finally:
        h.close()
    time.sleep(5 * FLUSH_S)  # more than one flush interval since the last message
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait(timeout=20)
    bag = tmp_path / "episode_000000"
    assert not bag_is_complete(bag)  # no metadata.yaml: it was killed, not closed
    report = recover_bag(bag)
    assert bag_is_complete(bag)
    assert report["recovered"] == 200
    assert _bag_counts(bag) == {topics[0]: 120, topics[1]: 80}


# -- storage faults: disk full (file size limit), unwritable or removed output folder ------------

DIAG_NAME = "/bag_recorder: recording"


class FaultHarness(Harness):
    """Harness that also watches the recorder's /diagnostics and can publish big messages."""

    def __init__(self, context, topics: list[str]) -> None:
        super().__init__(context, topics)
        self.diagnostics: list = []
        self.node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda msg: self.diagnostics.extend(s for s in msg.status if s.name == DIAG_NAME),
            50,
        )

    def publish_big(self, n: int, size: int, tag: str = "big") -> None:
        for i in range(n):
            self.chatter.publish(String(data=f"{tag}{i}:" + "x" * size))
            self.executor.spin_once(timeout_sec=0.0)

    def wait_diagnostic(self, level: int, text: str = "", timeout: float = 20.0):
        """The first recorder status of ``level`` whose message holds ``text``."""

        def found():
            return next(
                (s for s in self.diagnostics if s.level == bytes([level]) and text in s.message),
                None,
            )

        assert spin_until(self.executor, lambda: found() is not None, timeout), [
            (s.level, s.message) for s in self.diagnostics[-5:]
        ]
        return found()


def _mcap_topic_counts(bag: Path) -> dict[str, int]:
    """Per-topic message counts read by the independent `mcap` reader."""
    from mcap_ros2.reader import read_ros2_messages

    (file,) = sorted(bag.glob("*.mcap"))
    counts: dict[str, int] = {}
    for m in read_ros2_messages(str(file)):
        counts[m.channel.topic] = counts.get(m.channel.topic, 0) + 1
    return counts


def _assert_valid(bag: Path, counts: dict[str, int]) -> None:
    """Complete bag, same counts through rosbags and through the mcap reader."""
    assert bag_is_complete(bag), bag
    # (rosbags also lists a topic whose messages were all lost, with 0)
    assert {t: n for t, n in _bag_counts(bag).items() if n} == counts
    assert _mcap_topic_counts(bag) == counts


def _error_lines(proc) -> list[str]:
    return [line for line in proc.output().splitlines() if "recording stopped:" in line]


def test_disk_full_mid_recording_stops_with_clear_error_and_keeps_earlier_bags_valid(
    start_node, rclpy_context, tmp_path: Path
):
    """A file size limit (EFBIG, as a full disk's ENOSPC) hits the recorder mid-episode.

    The recording stops with one error line naming the file and the errno; the bag is cut
    back to its last flush and closed readable; the bag closed before is untouched;
    /diagnostics turns ERROR; once the limit is lifted ~/start records a complete bag.
    """
    import resource

    topics = ["/rec_full/chatter", "/rec_full/joint_states"]
    proc = _start_recorder(
        start_node,
        tmp_path,
        topics,
        "-p",
        "episode_topic:=''",
        "-p",
        f"flush_interval_s:={FLUSH_S}",
    )
    h = FaultHarness(rclpy_context, topics)
    try:
        h.wait_matched()
        first = h.call("start")
        assert first.success, first.message
        h.publish(n_chatter=50, n_joints=40)
        h.wait_received({topics[0]: 50, topics[1]: 40})
        assert h.call("stop").success

        second = Path(h.call("start").message)
        h.publish(n_chatter=30, n_joints=30)
        h.wait_received({topics[0]: 30, topics[1]: 30})
        time.sleep(5 * FLUSH_S)  # flushed: these 60 are on disk
        size = (second / f"{second.name}.mcap").stat().st_size
        # The disk "fills": no file of the recorder may grow more than 300 kB from now on.
        resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (size + 300_000, -1))
        h.publish_big(4, 400_000)  # the first flush of these fails with EFBIG
        assert proc.wait_for_output("recording stopped", 30), proc.output()
        diag = h.wait_diagnostic(2, "File too large")
        status = h.status()
        assert not status["recording"] and status["error_active"], status
        assert proc.alive()

        resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (-1, -1))  # space is back
        third = h.call("start")
        assert third.success, third.message
        h.publish(n_chatter=20, n_joints=10)
        h.wait_received({topics[0]: 20, topics[1]: 10})
        assert h.call("stop").success
        h.wait_diagnostic(0)
    finally:
        h.close()

    (line,) = _error_lines(proc)
    assert f"{second / second.name}.mcap" in line and "File too large (EFBIG)" in line, line
    assert "60 messages flushed before the error" in line, line
    assert "messages of this episode lost" in line and "keeps running" in line, line
    assert "EFBIG" in diag.message
    assert {kv.key: kv.value for kv in diag.values}["recording"] == "False"

    _assert_valid(Path(first.message), {topics[0]: 50, topics[1]: 40})
    _assert_valid(second, {topics[0]: 30, topics[1]: 30})
    meta = json.loads((second / "episode.json").read_text())
    assert "EFBIG" in meta["error"] and meta["stop_reason"] == "write_error"
    assert meta["written"] == 60 and meta["lost"] == 4 and meta["complete"] is True
    _assert_valid(Path(third.message), {topics[0]: 20, topics[1]: 10})
    assert proc.alive()


def test_unwritable_output_folder_refused_with_clear_error(
    start_node, rclpy_context, tmp_path: Path
):
    """At start-up: exit code 2 naming the folder and the errno. Mid-run: ~/start refused."""
    (tmp_path / "afile").write_text("a regular file, not a folder")
    bad = tmp_path / "afile" / "bags"
    refused = start_node(MODULE, "-p", f"output_dir:={bad}", "-p", "episode_topic:=''")
    assert refused.proc.wait(timeout=30) == 2, refused.output()
    text = refused.output()
    assert f"parameter 'output_dir' = '{bad}'" in text, text
    assert "Not a directory (ENOTDIR)" in text, text

    parent = tmp_path / "disk"
    out = parent / "bags"
    topics = ["/rec_ro/chatter", "/rec_ro/joint_states"]
    proc = _start_recorder(start_node, out, topics, "-p", "episode_topic:=''")
    h = FaultHarness(rclpy_context, topics)
    try:
        h.wait_matched()
        first = h.call("start")
        h.publish(n_chatter=10, n_joints=10)
        h.wait_received({topics[0]: 10, topics[1]: 10})
        assert h.call("stop").success
        # The folder's file system goes away and a regular file takes its place.
        parent.rename(tmp_path / "disk.saved")
        parent.write_text("not a folder any more")
        refused_start = h.call("start")
        assert not refused_start.success
        assert str(out) in refused_start.message, refused_start.message
        assert "Not a directory (ENOTDIR)" in refused_start.message, refused_start.message
        h.wait_diagnostic(2, "ENOTDIR")
        assert proc.alive() and not h.status()["recording"]

        parent.unlink()
        (tmp_path / "disk.saved").rename(parent)
        again = h.call("start")
        assert again.success, again.message
        h.publish(n_chatter=5, n_joints=5)
        h.wait_received({topics[0]: 5, topics[1]: 5})
        assert h.call("stop").success
    finally:
        h.close()
    _assert_valid(Path(first.message), {topics[0]: 10, topics[1]: 10})
    _assert_valid(Path(again.message), {topics[0]: 5, topics[1]: 5})
    assert [ln for ln in proc.output().splitlines() if "cannot start recording" in ln]
    assert proc.alive()


def test_output_folder_removed_mid_run_reported(start_node, rclpy_context, tmp_path: Path):
    """The output folder is deleted while a bag is written: reported, node keeps serving."""
    out = tmp_path / "bags"
    topics = ["/rec_rm/chatter", "/rec_rm/joint_states"]
    proc = _start_recorder(
        start_node, out, topics, "-p", "episode_topic:=''", "-p", f"flush_interval_s:={FLUSH_S}"
    )
    h = FaultHarness(rclpy_context, topics)
    try:
        h.wait_matched()
        bag = Path(h.call("start").message)
        h.publish(n_chatter=30, n_joints=20)
        h.wait_received({topics[0]: 30, topics[1]: 20})
        shutil.rmtree(out)
        assert proc.wait_for_output("recording stopped", 20), proc.output()
        diag = h.wait_diagnostic(2, "disappeared")
        assert not h.status()["recording"]
        assert not out.exists()  # not recreated behind the user's back
        h.publish(n_chatter=5, n_joints=5)  # arrives while idle: nothing is written
        time.sleep(0.5)
        assert not out.exists() and proc.alive()

        again = h.call("start")  # a new recording brings the folder back
        assert again.success, again.message
        h.publish(n_chatter=8, n_joints=6)
        h.wait_received({topics[0]: 8, topics[1]: 6})
        assert h.call("stop").success
    finally:
        h.close()
    (line,) = _error_lines(proc)
    assert str(bag) in line and "No such file or directory (ENOENT)" in line, line
    assert "the 50 messages recorded in it are lost" in line, line
    assert "disappeared" in diag.message
    _assert_valid(Path(again.message), {topics[0]: 8, topics[1]: 6})
    assert proc.alive()


def test_disk_full_at_close_keeps_the_flushed_part(start_node, rclpy_context, tmp_path: Path):
    """The last chunk cannot be written at ~/stop: the bag is closed at its last flush."""
    import resource

    topics = ["/rec_close/chatter", "/rec_close/joint_states"]
    # flush_interval_s 0: data reaches the disk only in full (1 MB) chunks and at close
    proc = _start_recorder(
        start_node, tmp_path, topics, "-p", "episode_topic:=''", "-p", "flush_interval_s:=0.0"
    )
    h = FaultHarness(rclpy_context, topics)
    try:
        h.wait_matched()
        bag = Path(h.call("start").message)
        h.publish_big(3, 400_000)  # > 1 MB: one full chunk is written and flushed
        h.wait_received({topics[0]: 3})
        time.sleep(0.5)
        size = (bag / f"{bag.name}.mcap").stat().st_size
        assert size > 1_000_000, size
        resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (size + 50_000, -1))
        h.publish(n_chatter=10, n_joints=10)
        h.publish_big(2, 100_000, tag="tail")  # in the open chunk, 200 kB: will not fit
        h.wait_received({topics[0]: 15, topics[1]: 10})
        stopped = h.call("stop")
        resource.prlimit(proc.proc.pid, resource.RLIMIT_FSIZE, (-1, -1))
        h.wait_diagnostic(2, "cannot close")
    finally:
        h.close()
    assert not stopped.success
    report = json.loads(stopped.message)
    assert report["error"].startswith(f"cannot close bag file {bag / bag.name}.mcap"), report
    assert "File too large (EFBIG)" in report["error"]
    assert report["written"] == 3 and report["lost"] == 22 and report["complete"], report
    _assert_valid(bag, {topics[0]: 3})
    (line,) = _error_lines(proc)
    assert "3 messages flushed before the error" in line, line
    assert proc.alive()


# -- EROFS and EACCES: a real read-only file system and a real permission refusal -------------

FAULT_MODULE = "fault_exec"


def _start_faulted(start_node, out: Path, topics: list[str], env: dict[str, str], *params: str):
    """The recorder through test/fault_exec.py (private tmpfs and/or unprivileged uid)."""
    test_dir = str(Path(__file__).parent)
    import os

    path = os.pathsep.join([test_dir, os.environ.get("PYTHONPATH", "")])
    proc = start_node(
        FAULT_MODULE,
        "-p",
        f"output_dir:={out}",
        "-p",
        f"topics:=[{','.join(repr(t) for t in topics)}]",
        "-p",
        "discovery_period_s:=0.1",
        *params,
        args=(MODULE,),
        **env,
        PYTHONPATH=path,
    )
    if not proc.wait_for_output("recording", 30):
        text = proc.output()
        if "fault_exec:" in text or "mount:" in text or "ModuleNotFoundError" in text:
            pytest.skip(f"this sandbox cannot prepare the fault: {text.strip()[-300:]}")
        raise AssertionError(text)
    return proc


def test_read_only_file_system_refuses_recording_with_erofs(
    start_node, rclpy_context, tmp_path: Path
):
    """A real EROFS: the recorder's own tmpfs is remounted read-only between two bags.

    (Linux refuses to remount read-only while a file on it is open for writing, EBUSY, so
    the read-only switch cannot land in the middle of a bag.) ~/start is refused naming
    the folder and EROFS, /diagnostics turns ERROR, the node keeps running, the bag closed
    before stays valid (rosbags and the mcap reader); writable again, ~/start records.
    """
    import subprocess

    if shutil.which("nsenter") is None or shutil.which("mount") is None:
        pytest.skip("nsenter / mount not installed")
    out = tmp_path / "ro_disk"
    topics = ["/rec_erofs/chatter", "/rec_erofs/joint_states"]
    proc = _start_faulted(
        start_node, out, topics, {"FAULT_TMPFS": str(out)}, "-p", "episode_topic:=''"
    )
    seen = Path(f"/proc/{proc.proc.pid}/root") / str(out).lstrip("/")

    def mount(mode: str) -> None:
        cmd = ["nsenter", "-t", str(proc.proc.pid), "-m", "mount", "-o", f"remount,{mode}"]
        subprocess.run([*cmd, str(out)], check=True, capture_output=True)

    h = FaultHarness(rclpy_context, topics)
    try:
        h.wait_matched()
        bag = Path(h.call("start").message)
        h.publish(n_chatter=30, n_joints=20)
        h.wait_received({topics[0]: 30, topics[1]: 20})
        assert h.call("stop").success
        mount("ro")
        refused = h.call("start")
        assert not refused.success, refused.message
        assert "Read-only file system (EROFS)" in refused.message, refused.message
        assert str(out) in refused.message, refused.message
        diag = h.wait_diagnostic(2, "EROFS")
        assert proc.alive() and not h.status()["recording"]
        mount("rw")
        again = h.call("start")
        assert again.success, again.message
        h.publish(n_chatter=7, n_joints=3)
        h.wait_received({topics[0]: 7, topics[1]: 3})
        assert h.call("stop").success
        saved = tmp_path / "copied"
        shutil.copytree(seen, saved)  # the tmpfs is seen by the recorder's namespace only
    finally:
        h.close()
    assert "EROFS" in diag.message
    _assert_valid(saved / bag.name, {topics[0]: 30, topics[1]: 20})
    _assert_valid(saved / Path(again.message).name, {topics[0]: 7, topics[1]: 3})
    assert proc.alive()


def test_permission_denied_mid_recording_stops_with_eacces(start_node, rclpy_context, tmp_path):
    """A real EACCES: the recorder runs without root's permission overrides
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH dropped by test/fault_exec.py) and its bag folder
    is made read-only (chmod 0555) mid-episode; closing the bag cannot write metadata.yaml.

    The error names the file and EACCES, /diagnostics turns ERROR, the node keeps running,
    ~/start is refused with EACCES, the storage file is complete and ``--recover`` adds the
    metadata.
    """
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root: the recorder drops root's permission overrides to get EACCES")
    out = tmp_path / "bags"
    out.mkdir()
    topics = ["/rec_eacces/chatter", "/rec_eacces/joint_states"]
    env = {"FAULT_DROP_DAC": "1"}
    proc = _start_faulted(
        start_node, out, topics, env, "-p", "episode_topic:=''", "-p", "flush_interval_s:=0.2"
    )
    caps = Path(f"/proc/{proc.proc.pid}/status").read_text().split("CapEff:")[1].split()[0]
    assert int(caps, 16) & 0b110 == 0, f"the recorder still overrides permissions: {caps}"
    h = FaultHarness(rclpy_context, topics)
    bag = None
    try:
        h.wait_matched()
        bag = Path(h.call("start").message)
        h.publish(n_chatter=25, n_joints=15)
        h.wait_received({topics[0]: 25, topics[1]: 15})
        bag.chmod(0o555)  # the recorder may not create metadata.yaml in it any more
        out.chmod(0o555)  # ... nor a new bag folder
        stopped = h.call("stop")
        diag = h.wait_diagnostic(2, "EACCES")
        refused = h.call("start")
        assert proc.alive() and not h.status()["recording"]
    finally:
        h.close()
        out.chmod(0o755)  # tmp_path is removed by pytest
        if bag is not None:
            bag.chmod(0o755)
    assert not stopped.success
    report = json.loads(stopped.message)
    assert "Permission denied (EACCES)" in report["error"], report
    assert str(bag) in report["error"], report
    assert not refused.success and "EACCES" in refused.message, refused.message
    assert "EACCES" in diag.message
    (line,) = _error_lines(proc)
    assert "Permission denied (EACCES)" in line and "--recover" in line, line
    assert not bag_is_complete(bag)
    recover_bag(bag)
    _assert_valid(bag, {topics[0]: 25, topics[1]: 15})

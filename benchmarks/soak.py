"""Soak: the whole stack for ``--minutes`` under full-size camera load, watched for decay.

Starts, each in its own process, in one leased DDS domain (localhost discovery only), with
the Fast DDS profile ``config/fastdds.xml`` (16 MB shared-memory segment, see
doc/transport.md) loaded by every process:

  * a fake robot (``--role publisher`` of this script): three 640x480 rgb8 cameras at 30 Hz
    (reliable, as camera drivers publish) and joint states at 500 Hz that follow the
    commands; it starts publishing only once every subscriber has matched, and counts
    every message it publishes;
  * policy_node with a tiny MLP checkpoint (``robot-policy init-checkpoint``: tiny_cnn
    backbone, three 64x64 cameras) so that it infers on the CPU;
  * command_streamer at 100 Hz;
  * bag_recorder recording the three cameras, the joint states and the commands (~83 MB/s):
    one bag when it fits in half the free disk, else bags of ``--episode-s`` (60) seconds,
    each checked through its MCAP summary and deleted unless ``--keep-bags`` (10 minutes
    are ~50 GB). Bags are started and ended through the recorder's episode topic, so that
    one callback closes a bag and opens the next (no message falls between two bags); the
    recorder's executor waits while the old bag's queue drains.

Every ``--sample-s`` seconds it samples each process's RSS and CPU (/proc, or psutil when
installed), the streamer's missed ticks and period error (/diagnostics), frames received
per policy_node subscriber (policy_node diagnostics) and the recorder's counts (~/status).
At the end the publisher stops first and the streamer is deactivated, so that what the
recorder received is compared exactly with what was published: messages lost by the
recorder = published - recorded - arrived between two bags.

Writes ``soak.json``, ``soak.md`` (tables) and ``soak.png`` (memory and period error over
time) into ``--out`` (default soak_output/). Targets: RSS growth < 5 % from the end of the
warm-up to the end, 0 missed ticks, 0 messages lost by the recorder.

    .venv/bin/python benchmarks/soak.py --minutes 2
    .venv/bin/python benchmarks/soak.py                 # 10 minutes
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from robot_policy_ros.bench.procstat import diag_number  # noqa: E402
from robot_policy_ros.processes import NodeProcess, isolated_ros_env  # noqa: E402

JOINTS = [f"joint_{i}" for i in range(1, 7)]
CAMERAS = ["front", "left", "right"]
CONTROL_RATE_HZ = 100.0
EPISODE_TOPIC = "/soak/episode"
TARGET_RSS_GROWTH_PCT = 5.0


# --------------------------------------------------------------------------------------------
# fake robot (runs as `python -m benchmarks.soak --role publisher ...`)
# --------------------------------------------------------------------------------------------


def run_publisher(args: argparse.Namespace) -> None:
    """Cameras and joint states; waits for its subscribers, then publishes until SIGINT."""
    import numpy as np
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Float64MultiArray

    rclpy.init()
    node = rclpy.create_node("soak_publisher")
    width, height = args.width, args.height
    # Reliable, one second of history each: a subscriber loses messages only if it falls
    # more than a second behind.
    cam_qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(args.camera_rate),
        reliability=ReliabilityPolicy.RELIABLE,
    )
    js_qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(args.joint_rate),
        reliability=ReliabilityPolicy.RELIABLE,
    )
    rng = np.random.default_rng(0)
    cams = []
    for name in CAMERAS:
        frames = []
        for _ in range(3):
            img = Image(height=height, width=width, encoding="rgb8", step=3 * width)
            img.header.frame_id = name
            img.data = rng.integers(0, 256, size=height * width * 3, dtype=np.uint8).tobytes()
            frames.append(img)
        cams.append((name, node.create_publisher(Image, f"/{name}/image_raw", cam_qos), frames))
    js_pub = node.create_publisher(JointState, "/joint_states", js_qos)
    positions = [0.0] * len(JOINTS)
    js = JointState(name=list(JOINTS))
    counts = {f"/{name}/image_raw": 0 for name in CAMERAS}
    counts["/joint_states"] = 0
    state = {"publishing": False, "started": None, "stopped": False}

    def on_command(msg: Float64MultiArray) -> None:
        if len(msg.data) == len(positions):
            positions[:] = list(msg.data)

    def publish_joints() -> None:
        js.header.stamp = node.get_clock().now().to_msg()
        js.position = positions
        js_pub.publish(js)
        counts["/joint_states"] += 1

    def publish_images() -> None:
        stamp = node.get_clock().now().to_msg()
        for name, pub, frames in cams:
            topic = f"/{name}/image_raw"
            img = frames[counts[topic] % len(frames)]
            img.header.stamp = stamp
            pub.publish(img)
            counts[topic] += 1

    stop = threading.Event()

    def loop(rate_hz: float, publish) -> None:
        """Publish at rate_hz on an absolute schedule (rclpy timers do not reach 500 Hz
        here); after a stall of more than 10 periods the schedule restarts from now."""
        period = 1.0 / rate_hz
        next_t = time.monotonic()
        while not stop.is_set():
            if state["publishing"]:
                publish()
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -10 * period:
                next_t = time.monotonic()

    def write_counts() -> None:
        tmp = Path(args.counts + ".tmp")
        info = {"started": state["started"], "stopped": state["stopped"], "published": counts}
        tmp.write_text(json.dumps(info))
        tmp.replace(args.counts)

    deadline = time.monotonic() + 120.0

    def maybe_start() -> None:
        if state["publishing"] or state["stopped"]:
            write_counts()
            return
        matched = all(pub.get_subscription_count() >= 2 for _, pub, _ in cams)
        matched = matched and js_pub.get_subscription_count() >= 3
        if matched or time.monotonic() > deadline:
            if not matched:
                print("soak_publisher: not every subscriber matched; publishing anyway")
            time.sleep(1.0)  # let the reliable matches settle
            state["publishing"] = True
            state["started"] = time.time()
            print("soak_publisher: publishing", flush=True)
            write_counts()

    def stop_publishing(*_: object) -> None:
        # SIGUSR1: stop publishing but stay up, so reliable delivery of the last messages
        # completes (SIGINT then ends the process).
        state["publishing"] = False
        state["stopped"] = True

    signal.signal(signal.SIGUSR1, stop_publishing)
    node.create_subscription(Float64MultiArray, "/joint_commands", on_command, 10)
    node.create_timer(1.0, maybe_start)
    threads = [
        threading.Thread(target=loop, args=(args.joint_rate, publish_joints), daemon=True),
        threading.Thread(target=loop, args=(args.camera_rate, publish_images), daemon=True),
    ]
    for thread in threads:
        thread.start()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        state["publishing"] = False
        stop.set()
        for thread in threads:
            thread.join(timeout=2)
        write_counts()
        print(f"soak_publisher: published {counts}", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()


# --------------------------------------------------------------------------------------------
# measurement (this process)
# --------------------------------------------------------------------------------------------


class Monitor:
    """Diagnostics of every node, and service calls; spins in a background thread."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from lifecycle_msgs.srv import ChangeState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        rclpy.init()
        self.node = rclpy.create_node("soak_monitor")
        self.lock = threading.Lock()
        self.latest: dict[str, dict[str, str]] = {}
        self.history: dict[str, list[tuple[float, dict[str, str]]]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.recorder = {
            name: self.node.create_client(Trigger, f"/bag_recorder/{name}") for name in ("status",)
        }
        self.streamer_state = self.node.create_client(ChangeState, "/command_streamer/change_state")
        latched = QoSProfile(
            depth=10,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.episodes = self.node.create_publisher(String, EPISODE_TOPIC, latched)
        self._string = String
        self._trigger = Trigger.Request
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def _on_diag(self, msg) -> None:
        now = time.monotonic()
        for status in msg.status:
            name = status.name.split(":")[0].lstrip("/")
            values = {kv.key: kv.value for kv in status.values}
            values["_level"] = str(status.level[0] if status.level else 0)
            values["_message"] = status.message
            with self.lock:
                self.latest[name] = values
                self.history.setdefault(name, []).append((now, values))

    def diag(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self.latest.get(name, {}))

    def _call(self, client, request, timeout: float = 30.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"service {client.srv_name} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"service {client.srv_name} did not answer")
            time.sleep(0.01)
        return future.result()

    def recorder_call(self, name: str, timeout: float = 30.0) -> Any:
        return self._call(self.recorder[name], self._trigger(), timeout)

    def recorder_status(self) -> dict:
        return json.loads(self.recorder_call("status").message)

    def announce_episode(self, index: int, done: bool) -> None:
        """The simulator's episode message, which bag_recorder starts and ends bags by."""
        info = {"index": index, "seed": index, "success": done, "done": done, "elapsed_s": 0.0}
        self.episodes.publish(self._string(data=json.dumps(info)))

    def deactivate_streamer(self) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_DEACTIVATE
        return bool(self._call(self.streamer_state, request).success)

    def close(self) -> None:
        import rclpy

        self._running = False
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.try_shutdown()


class ProcSampler:
    """RSS and CPU of a process: psutil when installed, else /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._last: tuple[float, float] | None = None
        try:
            import psutil

            self._ps = psutil.Process(pid)
        except ImportError:
            self._ps = None

    def rss_mb(self) -> float:
        if self._ps is not None:
            return self._ps.memory_info().rss / 1e6
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
        return math.nan

    def rss_parts_mb(self) -> dict[str, float]:
        """RssAnon / RssFile / RssShmem (MB): heap, mapped files, shared-memory segments."""
        parts = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in ("RssAnon", "RssFile", "RssShmem"):
                parts[key[3:].lower()] = int(line.split()[1]) * 1024 / 1e6
        return parts

    def cpu_s(self) -> float:
        if self._ps is not None:
            t = self._ps.cpu_times()
            return t.user + t.system
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_percent(self) -> float:
        """CPU use since the previous call (100 = one core)."""
        now, cpu = time.monotonic(), self.cpu_s()
        last, self._last = self._last, (now, cpu)
        if last is None or now <= last[0]:
            return math.nan
        return 100.0 * (cpu - last[1]) / (now - last[0])


def machine_info() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // 1024
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": mem,
        "load_average_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def make_checkpoint(out: Path, env: dict[str, str], size: int) -> None:
    cmd = [
        sys.executable, "-m", "robot_policy_ros.cli", "init-checkpoint",
        "--policy", "mlp",
        "--joints", ",".join(JOINTS),
        "--cameras", ",".join(f"{c}:{size}x{size}" for c in CAMERAS),
        "--fps", "50", "--chunk-size", "50",
        "--set", 'vision_backbone="tiny_cnn"', "--set", "hidden_dims=[128,128]",
        "--out", str(out), "--seed", "0",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=str(REPO), stdout=subprocess.DEVNULL)


def mcap_summary_counts(bag: Path) -> dict[str, int]:
    """Per-topic message counts from the bag's MCAP summary (read by the `mcap` package)."""
    from mcap.reader import make_reader

    (file,) = sorted(bag.glob("*.mcap"))
    with open(file, "rb") as fh:
        summary = make_reader(fh).get_summary()
    if summary is None or summary.statistics is None:
        return {}
    topics = {cid: ch.topic for cid, ch in summary.channels.items()}
    return {topics[cid]: n for cid, n in summary.statistics.channel_message_counts.items() if n}


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = self.out / "run"
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir()
        self.env = isolated_ros_env(args.domain or None)
        os.environ.update(
            {
                "ROS_DOMAIN_ID": self.env["ROS_DOMAIN_ID"],
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                # this process's participant gets the profile too
                "FASTRTPS_DEFAULT_PROFILES_FILE": self.env.get(
                    "FASTRTPS_DEFAULT_PROFILES_FILE", ""
                ),
                "FASTDDS_DEFAULT_PROFILES_FILE": self.env.get("FASTDDS_DEFAULT_PROFILES_FILE", ""),
            }
        )
        self.procs: dict[str, NodeProcess] = {}
        self.samples: list[dict[str, Any]] = []
        self.bags: list[dict[str, Any]] = []
        self.switches: list[float] = []  # when a bag was ended (monotonic)
        self.t0 = 0.0
        self.topics = [f"/{c}/image_raw" for c in CAMERAS] + ["/joint_states", "/joint_commands"]

    def start(self, name: str, module: str, *ros_args: str, args: tuple[str, ...] = ()) -> None:
        env = dict(self.env)
        if name == "bag_recorder":
            env.update(item.split("=", 1) for item in self.args.recorder_env)
        self.procs[name] = NodeProcess(
            module, args=args, ros_args=ros_args, env=env, log_path=self.work / f"{name}.log"
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if not proc.alive():
                raise RuntimeError(
                    f"{name} exited with {proc.proc.returncode}:\n{proc.output()[-3000:]}"
                )

    def published(self) -> dict[str, Any]:
        try:
            return json.loads((self.work / "published.json").read_text())
        except (OSError, ValueError):
            return {"started": None, "published": {}}

    def next_bag(self, monitor: Monitor, index: int, last: bool = False) -> None:
        """Episode ``index`` ends (``last``) or episode ``index + 1`` starts, which ends it.

        Through the recorder's episode topic, so that closing a bag and opening the next
        happen in one callback: no message arrives while no bag is open.
        """
        monitor.announce_episode(index if last else index + 1, done=last)
        self.switches.append(time.monotonic())
        bag = self.work / "bags" / f"episode_{index:06d}"
        meta = bag / "episode.json"
        deadline = time.monotonic() + 900.0  # the close drains the recorder's queue
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                info = json.loads(meta.read_text())
            except (OSError, ValueError):
                info = {}
            if "stop_reason" in info:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{bag.name} was not closed within 900 s")
        on_disk = mcap_summary_counts(bag) if info.get("complete") else {}
        written = {t: c["written"] for t, c in info["counts"].items() if c["written"]}
        size = sum(f.stat().st_size for f in bag.iterdir() if f.is_file())
        entry = {
            "bag": bag.name,
            "complete": info["complete"],
            "duration_s": info["duration_s"],
            "bytes": size,
            "topics": info["counts"],
            "mcap_summary_counts": on_disk,
            "summary_matches_recorder": on_disk == written,
            "error": info.get("error"),
        }
        self.bags.append(entry)
        print(
            f"  bag {bag.name}: {info['written']}/{info['received']} written/received, "
            f"{size / 1e9:.2f} GB, MCAP summary "
            f"{'matches' if entry['summary_matches_recorder'] else 'DIFFERS'}",
            flush=True,
        )
        if not self.args.keep_bags:
            shutil.rmtree(bag, ignore_errors=True)

    def sample(self, t0: float, samplers: dict[str, ProcSampler], monitor: Monitor) -> None:
        row: dict[str, Any] = {"t_s": round(time.monotonic() - t0, 2)}
        for name, sampler in samplers.items():
            try:
                row[f"rss_mb_{name}"] = round(sampler.rss_mb(), 2)
                row[f"cpu_pct_{name}"] = round(sampler.cpu_percent(), 1)
                for part, mb in sampler.rss_parts_mb().items():
                    row[f"rss_{part}_mb_{name}"] = round(mb, 2)
            except (OSError, ValueError):
                row[f"rss_mb_{name}"] = row[f"cpu_pct_{name}"] = math.nan
        s = monitor.diag("command_streamer")
        p = monitor.diag("policy_node")
        for key in ("missed_ticks", "period_error_p99_ms", "period_error_max_ms", "tick_rate_hz"):
            row[f"streamer_{key}"] = diag_number(s, key)
        row["streamer_state"] = s.get("state", "")
        row["policy_inferences"] = diag_number(p, "inferences")
        row["policy_latency_p95_ms"] = diag_number(p, "inference_latency_p95_ms")
        row["policy_state"] = p.get("state", "")
        row["policy_images_rejected"] = diag_number(p, "images_rejected")
        for cam in CAMERAS:
            row[f"policy_frames_{cam}"] = diag_number(p, f"frames_received_{cam}")
        row["policy_joint_states"] = diag_number(p, "joint_states_received")
        try:
            status = monitor.recorder_status()
            row["recorder_pending"] = status["pending"]
            row["recorder_pending_mb"] = status.get("pending_mb", math.nan)
            row["recorder_heap_trims"] = status.get("heap_trims", math.nan)
            row["recorder_lost_in_bag"] = sum(
                c["dropped"] + c["failed"] for c in status["counts"].values()
            )
        except RuntimeError:
            row["recorder_pending"] = row["recorder_lost_in_bag"] = math.nan
            row["recorder_pending_mb"] = row["recorder_heap_trims"] = math.nan
        row["published"] = dict(self.published()["published"])
        row["load_average_1min"] = os.getloadavg()[0]
        self.samples.append(row)
        print(
            f"  t={row['t_s']:6.0f} s | RSS MB "
            + " ".join(f"{n} {row[f'rss_mb_{n}']:.0f}" for n in samplers)
            + f" | streamer missed {row['streamer_missed_ticks']:.0f} p99 "
            f"{row['streamer_period_error_p99_ms']:.2f} ms | recorder queue "
            f"{row['recorder_pending']} | inferences {row['policy_inferences']:.0f} | load "
            f"{row['load_average_1min']:.1f}",
            flush=True,
        )

    def run(self) -> dict[str, Any]:
        args = self.args
        machine = machine_info()
        per_s = len(CAMERAS) * 30.0 * (args.width * args.height * 3 + 64) + 500 * 150 + 100 * 100
        estimate = per_s * 60.0 * args.minutes
        free = shutil.disk_usage(self.work).free
        if args.episode_s < 0:
            args.episode_s = 0.0 if estimate < 0.5 * free else 60.0
        print(
            f"recording ~{estimate / 1e9:.1f} GB ({free / 1e9:.0f} GB free): "
            + (
                f"bags of {args.episode_s:g} s, deleted once checked"
                if args.episode_s
                else "one bag"
            ),
            flush=True,
        )
        ckpt = self.work / "checkpoint"
        print(f"domain {self.env['ROS_DOMAIN_ID']}; tiny MLP checkpoint -> {ckpt}", flush=True)
        make_checkpoint(ckpt, self.env, args.policy_image)
        bags = self.work / "bags"
        topics = ",".join(self.topics)
        self.start(
            "bag_recorder",
            "robot_policy_ros.nodes.bag_recorder",
            "-p", f"output_dir:={bags}", "-p", f"topics:=[{topics}]",
            "-p", f"episode_topic:={EPISODE_TOPIC}",
        )  # fmt: skip
        self.start(
            "policy_node",
            "robot_policy_ros.nodes.policy_node",
            "-p", f"checkpoint:={ckpt}", "-p", "max_observation_age_s:=0.5",
            # 640x480 frames into the checkpoint's 64x64 cameras: the aspect ratios differ,
            # which policy_node refuses unless told how to fit them (then it never infers).
            "-p", "image_fit:=resize",
        )  # fmt: skip
        self.start(
            "command_streamer",
            "robot_policy_ros.nodes.command_streamer",
            "-p", f"checkpoint:={ckpt}", "-p", f"control_rate_hz:={CONTROL_RATE_HZ}",
        )  # fmt: skip
        monitor = Monitor()
        result: dict[str, Any] = {}
        try:
            print("waiting for policy_node and command_streamer to be active ...", flush=True)
            deadline = time.monotonic() + 240.0
            while time.monotonic() < deadline:
                self.check_alive()
                if (
                    monitor.diag("policy_node").get("active") == "True"
                    and monitor.diag("command_streamer").get("active") == "True"
                ):
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError("policy_node / command_streamer not active within 240 s")
            # The first bag opens before the first message is published.
            episode = 0
            monitor.announce_episode(episode, done=False)
            deadline = time.monotonic() + 30.0
            while not monitor.recorder_status()["recording"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("bag_recorder did not start recording")
                time.sleep(0.1)
            self.start(
                "publisher",
                "benchmarks.soak",
                args=(
                    "--role", "publisher", "--counts", str(self.work / "published.json"),
                    "--width", str(args.width), "--height", str(args.height),
                ),
            )  # fmt: skip
            deadline = time.monotonic() + 180.0
            while not self.published()["started"]:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("the publisher did not start within 180 s")
                time.sleep(0.2)
            samplers = {name: ProcSampler(p.proc.pid) for name, p in self.procs.items()}
            samplers["soak_monitor"] = ProcSampler(os.getpid())
            for sampler in samplers.values():
                sampler.cpu_percent()
            t0 = self.t0 = time.monotonic()
            total = 60.0 * args.minutes
            next_sample = t0 + args.sample_s
            next_bag = t0 + args.episode_s if args.episode_s > 0 else math.inf
            print(f"soaking for {args.minutes:g} min ...", flush=True)
            while time.monotonic() - t0 < total:
                self.check_alive()
                now = time.monotonic()
                if now >= next_bag:
                    self.next_bag(monitor, episode)
                    episode += 1
                    next_bag += args.episode_s
                if now >= next_sample:
                    self.sample(t0, samplers, monitor)
                    next_sample = max(next_sample + args.sample_s, time.monotonic())
                time.sleep(0.1)
            self.sample(t0, samplers, monitor)
            elapsed = time.monotonic() - t0
            # The end: publisher first, then the streamer, then the last bag, so that every
            # published message has had its chance to be recorded.
            self.procs["publisher"].proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10.0
            while not self.published().get("stopped") and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.0)
            monitor.deactivate_streamer()
            time.sleep(3.0)  # recorder drains; the streamer's final diagnostics arrive
            streamer_final = monitor.diag("command_streamer")
            policy_final = monitor.diag("policy_node")
            self.next_bag(monitor, episode, last=True)
            status = monitor.recorder_status()
            result = self.summarize(elapsed, machine, streamer_final, policy_final, status)
        finally:
            monitor.close()
            for proc in reversed(list(self.procs.values())):
                proc.stop()
        return result

    def summarize(
        self,
        elapsed: float,
        machine: dict[str, Any],
        streamer: dict[str, str],
        policy: dict[str, str],
        status: dict[str, Any],
    ) -> dict[str, Any]:
        args = self.args
        machine["load_average_end"] = os.getloadavg()
        names = [k[len("rss_mb_") :] for k in self.samples[0] if k.startswith("rss_mb_")]
        base = next((s for s in self.samples if s["t_s"] >= args.warmup_s), self.samples[0])
        last = self.samples[-1]
        processes = {}
        for n in names:
            rss = [s[f"rss_mb_{n}"] for s in self.samples]
            cpu = [s[f"cpu_pct_{n}"] for s in self.samples if not math.isnan(s[f"cpu_pct_{n}"])]
            after = [s for s in self.samples if s["t_s"] >= base["t_s"]]
            slope = _slope([s["t_s"] for s in after], [s[f"rss_mb_{n}"] for s in after])
            k = max(1, len(after) // 5)
            head = _median([s[f"rss_mb_{n}"] for s in after[:k]])
            tail = _median([s[f"rss_mb_{n}"] for s in after[-k:]])
            processes[n] = {
                "rss_growth_pct_median_fifths": 100.0 * (tail - head) / head,
                "rss_mb_first": rss[0],
                "rss_mb_start": base[f"rss_mb_{n}"],
                "rss_mb_end": last[f"rss_mb_{n}"],
                "rss_mb_max": max(rss),
                "rss_growth_pct": 100.0
                * (last[f"rss_mb_{n}"] - base[f"rss_mb_{n}"])
                / base[f"rss_mb_{n}"],
                "rss_slope_mb_per_min": 60.0 * slope,
                "cpu_pct_mean": sum(cpu) / len(cpu) if cpu else math.nan,
                "cpu_pct_max": max(cpu) if cpu else math.nan,
            }

        # The recorder's RSS holds its write queue (frames waiting for the disk thread):
        # RSS minus the queued payload separates a backlog from memory kept or leaked.
        def beyond_queue(sample: dict[str, Any]) -> float:
            return sample["rss_mb_bag_recorder"] - sample.get("recorder_pending_mb", math.nan)

        rec = processes.get("bag_recorder")
        if rec is not None:
            after = [beyond_queue(s) for s in self.samples if s["t_s"] >= base["t_s"]]
            k = max(1, len(after) // 5)
            rec["rss_minus_queue_mb_start"] = beyond_queue(base)
            rec["rss_minus_queue_mb_end"] = beyond_queue(last)
            rec["rss_minus_queue_growth_pct_median_fifths"] = (
                100.0 * (_median(after[-k:]) - _median(after[:k])) / _median(after[:k])
            )
            rec["queue_mb_end"] = last.get("recorder_pending_mb", math.nan)
        published = self.published()["published"]
        idle = status.get("idle_received", {})
        topics = {}
        for topic in self.topics:
            recorded = sum(b["topics"].get(topic, {}).get("written", 0) for b in self.bags)
            received = sum(b["topics"].get(topic, {}).get("received", 0) for b in self.bags)
            in_bag_lost = received - recorded
            if topic == "/joint_commands":
                pub = diag_number(streamer, "commands_published")
                pub = None if math.isnan(pub) else int(pub)
            else:
                pub = published.get(topic)
            entry: dict[str, Any] = {
                "published": pub,
                "recorder_received": received,
                "recorded": recorded,
                "recorder_lost_in_bag": in_bag_lost,
                "between_bags": idle.get(topic, 0),
            }
            if pub is not None:
                entry["lost_by_recorder"] = pub - recorded - idle.get(topic, 0)
                entry["published_rate_hz"] = pub / elapsed
            cam = topic.strip("/").split("/")[0]
            key = f"frames_received_{cam}" if cam in CAMERAS else "joint_states_received"
            if cam in CAMERAS or topic == "/joint_states":
                got = diag_number(policy, key)
                entry["policy_node_received"] = None if math.isnan(got) else int(got)
            topics[topic] = entry
        measured = [s for s in self.samples if s["t_s"] >= base["t_s"]]
        p99 = [s["streamer_period_error_p99_ms"] for s in measured]
        pmax = [s["streamer_period_error_max_ms"] for s in measured]
        missed_total = diag_number(streamer, "missed_ticks")
        missed_window = last["streamer_missed_ticks"] - base["streamer_missed_ticks"]
        streamer_res = {
            "missed_ticks_total": missed_total,
            "missed_ticks_after_warmup": missed_window,
            "period_error_p99_ms_median": _median(p99),
            "period_error_p99_ms_worst": _nanmax(p99),
            "period_error_max_ms_worst": _nanmax(pmax),
            "tick_rate_hz_last": last["streamer_tick_rate_hz"],
            "commands_published": diag_number(streamer, "commands_published"),
            "underrun_events": diag_number(streamer, "underrun_events"),
        }
        policy_res = {
            "inferences": diag_number(policy, "inferences"),
            "inference_latency_median_ms": diag_number(policy, "inference_latency_median_ms"),
            "inference_latency_p95_ms": diag_number(policy, "inference_latency_p95_ms"),
            "chunks_published": diag_number(policy, "chunks_published"),
            "stale_skips": diag_number(policy, "stale_skips"),
            "images_rejected": diag_number(policy, "images_rejected"),
            "stale_reason": policy.get("stale_reason", ""),
        }
        stack = [n for n in names if n != "soak_monitor"]
        lost = [t["lost_by_recorder"] for t in topics.values() if "lost_by_recorder" in t]
        targets = {
            "rss_growth_below_5_pct": all(
                processes[n]["rss_growth_pct"] < TARGET_RSS_GROWTH_PCT for n in stack
            ),
            "zero_missed_ticks": missed_total == 0,
            # the stack under test must be the whole loop: policy_node inferring all along
            "policy_node_inferring": policy_res["inferences"] > 0
            and all(s["policy_inferences"] > 0 for s in self.samples if s["t_s"] >= base["t_s"]),
            "zero_lost_by_recorder": all(n == 0 for n in lost)
            and all(b["summary_matches_recorder"] for b in self.bags),
        }
        return {
            "command": " ".join(sys.argv),
            "minutes": args.minutes,
            "measured_s": elapsed,
            "warmup_s": args.warmup_s,
            "baseline_t_s": base["t_s"],
            "machine": machine,
            "config": {
                "cameras": f"{len(CAMERAS)} x {args.width}x{args.height} rgb8 @ 30 Hz",
                "joint_states_hz": 500,
                "control_rate_hz": CONTROL_RATE_HZ,
                "policy": f"mlp tiny_cnn, {len(CAMERAS)} x {args.policy_image}x"
                f"{args.policy_image}, chunk 50 @ 50 Hz",
                "episode_s": args.episode_s,
                "fastdds_profile": self.env.get("FASTRTPS_DEFAULT_PROFILES_FILE", ""),
                "recorder_env": list(args.recorder_env),
            },
            "processes": processes,
            "streamer": streamer_res,
            "policy_node": policy_res,
            "topics": topics,
            "recorder_queue_max": _nanmax([s["recorder_pending"] for s in self.samples]),
            "bags": self.bags,
            "bag_switch_t_s": [round(t - self.t0, 2) for t in self.switches[:-1]],
            "targets": targets,
            "samples": self.samples,
        }


def _slope(x: list[float], y: list[float]) -> float:
    pts = [(a, b) for a, b in zip(x, y, strict=True) if not math.isnan(b)]
    if len(pts) < 2:
        return math.nan
    mx = sum(a for a, _ in pts) / len(pts)
    my = sum(b for _, b in pts) / len(pts)
    den = sum((a - mx) ** 2 for a, _ in pts)
    return sum((a - mx) * (b - my) for a, b in pts) / den if den else math.nan


def _median(values: list[float]) -> float:
    v = sorted(x for x in values if not math.isnan(x))
    return v[len(v) // 2] if v else math.nan


def _nanmax(values: list[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return max(v) if v else math.nan


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    ok = {True: "met", False: "**MISSED**"}
    lines = [
        f"Soak: `{res['command']}`, {res['measured_s'] / 60:.1f} min measured, "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory_mb']} MB, load average "
        f"{m['load_average_start'][0]:.1f} at the start, {m['load_average_end'][0]:.1f} at "
        f"the end, {m['date']}. {res['config']['cameras']}, joint states 500 Hz, "
        f"{res['config']['policy']}, streamer {res['config']['control_rate_hz']:g} Hz, "
        + (
            f"bags of {res['config']['episode_s']:g} s"
            if res["config"]["episode_s"]
            else "one bag for the whole run"
        )
        + f". Start = t {res['baseline_t_s']:.0f} s (end of warm-up); growth = end vs start, "
        "and median of the last fifth vs median of the first fifth of the samples after it.",
        "",
        "| process | RSS first MB | RSS start MB | RSS end MB | growth | growth (medians) "
        "| slope MB/min | CPU mean % | CPU max % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in res["processes"].items():
        lines.append(
            f"| {name} | {p['rss_mb_first']:.0f} | {p['rss_mb_start']:.0f} | "
            f"{p['rss_mb_end']:.0f} | {p['rss_growth_pct']:+.1f} % | "
            f"{p['rss_growth_pct_median_fifths']:+.1f} % | {p['rss_slope_mb_per_min']:+.2f} | "
            f"{p['cpu_pct_mean']:.0f} | {p['cpu_pct_max']:.0f} |"
        )
    s = res["streamer"]
    lines += [
        "",
        "| command_streamer | value |",
        "| --- | --- |",
        f"| missed ticks (whole run / after warm-up) | {s['missed_ticks_total']:.0f} / "
        f"{s['missed_ticks_after_warmup']:.0f} |",
        f"| period error p99 per 10 s window, median / worst (ms) | "
        f"{s['period_error_p99_ms_median']:.3f} / {s['period_error_p99_ms_worst']:.3f} |",
        f"| period error max, worst window (ms) | {s['period_error_max_ms_worst']:.3f} |",
        f"| commands published | {s['commands_published']:.0f} |",
        f"| bag_recorder queue, max over the samples (messages) | {res['recorder_queue_max']} |",
        f"| underrun events | {s['underrun_events']:.0f} |",
    ]
    p = res["policy_node"]
    lines += [
        f"| policy_node inferences / latency median, p95 (ms) | {p['inferences']:.0f} / "
        f"{p['inference_latency_median_ms']:.1f}, {p['inference_latency_p95_ms']:.1f} |",
        f"| policy_node stale skips / images rejected | {p['stale_skips']:.0f} / "
        f"{p['images_rejected']:.0f} |",
        "",
        "Publishers: the fake robot reliable with 1 s of history (cameras 30, joint states "
        "500); command_streamer reliable, keep last 1 (by design: only the latest command).",
        "",
        "| topic | published | policy_node received | recorder received | recorded "
        "| between bags | lost by the recorder |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for topic, t in res["topics"].items():
        lines.append(
            f"| {topic} | {t['published']} | {t.get('policy_node_received', '-')} | "
            f"{t['recorder_received']} | {t['recorded']} | {t['between_bags']} | "
            f"{t.get('lost_by_recorder', '-')} |"
        )
    rec = res["processes"].get("bag_recorder", {})
    if "rss_minus_queue_mb_start" in rec:
        lines += [
            "",
            f"bag_recorder RSS minus its queued payload (MB): {rec['rss_minus_queue_mb_start']:.0f}"
            f" at the start, {rec['rss_minus_queue_mb_end']:.0f} at the end (medians of the "
            f"first / last fifth: {rec['rss_minus_queue_growth_pct_median_fifths']:+.1f} %); "
            f"queue at the end {rec['queue_mb_end']:.0f} MB.",
        ]
    tg = res["targets"]
    lines += [
        "",
        f"Targets: RSS growth < 5 % {ok[tg['rss_growth_below_5_pct']]}; 0 missed ticks "
        f"{ok[tg['zero_missed_ticks']]}; policy_node inferring "
        f"{ok[tg['policy_node_inferring']]}; 0 messages lost by the recorder "
        f"{ok[tg['zero_lost_by_recorder']]} (bags: "
        + ", ".join(
            f"{b['bag']} {'complete' if b['complete'] else 'INCOMPLETE'}"
            + ("" if b["summary_matches_recorder"] else " MCAP summary differs")
            for b in res["bags"]
        )
        + ").",
    ]
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    samples = res["samples"]
    t = [s["t_s"] / 60.0 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for name in res["processes"]:
        ax1.plot(t, [s[f"rss_mb_{name}"] for s in samples], label=name)
    ax1.plot(
        t,
        [s.get("recorder_pending_mb", math.nan) for s in samples],
        linestyle="--",
        label="bag_recorder queue (MB)",
    )
    ax1.axvline(res["baseline_t_s"] / 60.0, color="grey", linestyle=":", label="end of warm-up")
    ax1.set_ylabel("RSS (MB)")
    ax1.legend(fontsize=8, loc="upper left")
    ax1.set_title("soak: memory and command period error over time")
    for k, ts in enumerate(res.get("bag_switch_t_s", [])):
        for ax in (ax1, ax2):
            ax.axvline(ts / 60.0, color="k", alpha=0.2, label="next bag" if k == 0 else None)
    ax2.plot(t, [s["streamer_period_error_p99_ms"] for s in samples], label="p99 (10 s window)")
    ax2.plot(t, [s["streamer_period_error_max_ms"] for s in samples], label="max (10 s window)")
    ax2.set_ylabel("streamer period error (ms)")
    ax2.set_xlabel("time (min)")
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak duration")
    parser.add_argument("--out", default="soak_output", help="output folder")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    # 90 s: in a 10-minute run the recorder's RSS reached its plateau at ~65 s (its DDS
    # shared-memory segments, thread arenas and queue filling to their working size).
    parser.add_argument("--warmup-s", type=float, default=90.0, help="RSS baseline after this")
    parser.add_argument(
        "--episode-s",
        type=float,
        default=-1.0,
        help="bag length in s; 0: one bag; default: one bag if it fits in half the free disk, "
        "else 60 s bags (each checked, then deleted)",
    )
    parser.add_argument("--keep-bags", action="store_true", help="keep the bags (~5 GB/min)")
    parser.add_argument(
        "--recorder-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of bag_recorder (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--policy-image", type=int, default=64, help="checkpoint camera size")
    parser.add_argument("--domain", type=int, default=0, help="ROS_DOMAIN_ID (0: lease one)")
    parser.add_argument("--role", default="", help=argparse.SUPPRESS)
    parser.add_argument("--counts", default="", help=argparse.SUPPRESS)
    parser.add_argument("--camera-rate", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument("--joint-rate", type=float, default=500.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "publisher":
        run_publisher(args)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # stop the node processes on the way out
    soak = Soak(args)
    res = soak.run()
    out = Path(args.out)
    (out / "soak.json").write_text(json.dumps(res, indent=2, default=str))
    text = markdown(res)
    (out / "soak.md").write_text(text)
    plotted = plot(res, out / "soak.png")
    print()
    print(text)
    print(f"wrote {out / 'soak.json'}, {out / 'soak.md'}" + (", soak.png" if plotted else ""))
    if not args.keep_bags:
        shutil.rmtree(soak.work / "bags", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

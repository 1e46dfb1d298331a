"""The demo orchestrator's pure helpers (the full ``make demo`` is run by hand: minutes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from robot_policy_ros.demo import (
    DemoConfig,
    _diag_float,
    command_timing,
    main,
    mean_success_time,
    plot_eval,
    recorded_episodes,
    training_summary,
)
from robot_policy_ros.demo.config import SUCCESS_BARS
from robot_policy_ros.demo.report import write_report
from robot_policy_ros.sim.task import TASKS


def test_command_timing_of_a_steady_stream_is_the_rate_with_no_error() -> None:
    times = [10.0 + 0.02 * i for i in range(101)]
    timing = command_timing(times, 50.0)
    assert timing["rate_hz"] == pytest.approx(50.0)
    assert timing["period_error_p99_ms"] == pytest.approx(0.0, abs=1e-6)


def test_command_timing_reports_a_late_command() -> None:
    times = list(np.arange(0.0, 2.0, 0.02))
    times[50] += 0.008  # arrives 8 ms late: one period 28 ms, the next 12 ms
    timing = command_timing(times, 50.0)
    assert timing["period_error_max_ms"] == pytest.approx(8.0, abs=1e-6)
    assert timing["period_error_p50_ms"] == pytest.approx(0.0, abs=1e-6)


def test_command_timing_leaves_out_deliberate_pauses_only() -> None:
    first = [0.02 * i for i in range(50)]  # 0 .. 0.98
    second = [2.0 + 0.02 * i for i in range(50)]  # a 1 s gap: the stack was restarted
    timing = command_timing(first + second, 50.0, pauses=[(1.0, 1.5)])
    assert timing["periods"] == 98
    assert timing["rate_hz"] == pytest.approx(50.0)
    assert timing["period_error_max_ms"] == pytest.approx(0.0, abs=1e-6)
    # The same gap outside a pause is a stall and counts.
    stalled = command_timing(first + second, 50.0, pauses=[(3.0, 3.5)])
    assert stalled["period_error_max_ms"] == pytest.approx(1000.0, abs=1e-6)
    assert stalled["rate_hz"] < 49.0


def test_command_timing_needs_three_commands() -> None:
    timing = command_timing([0.0, 0.02], 50.0)
    assert timing["rate_hz"] == 0.0
    assert math.isnan(timing["period_error_p99_ms"])


def test_mean_success_time_ignores_failed_episodes() -> None:
    results = [
        {"success": True, "elapsed_s": 2.0},
        {"success": False, "elapsed_s": 10.0},
        {"success": True, "elapsed_s": 3.0},
    ]
    assert mean_success_time(results) == pytest.approx(2.5)
    assert math.isnan(mean_success_time([{"success": False, "elapsed_s": 10.0}]))


def test_diag_float_reads_the_named_status_and_skips_non_numbers() -> None:
    diags = {
        "command_streamer: control": {"period_error_p99_ms": "0.4", "state": "running"},
        "policy_node: inference": {"inference_latency_median_ms": "12.5"},
    }
    assert _diag_float(diags, "policy_node", "inference_latency_median_ms") == 12.5
    assert _diag_float(diags, "command_streamer", "period_error_p99_ms") == 0.4
    assert math.isnan(_diag_float(diags, "command_streamer", "state"))
    assert math.isnan(_diag_float(diags, "policy_node", "missing"))


def test_recorded_episodes_reads_every_bags_metadata(tmp_path: Path) -> None:
    for index, success in ((0, True), (1, False)):
        bag = tmp_path / f"episode_{index:06d}"
        bag.mkdir()
        meta = {"index": index, "success": success, "elapsed_s": 1.5, "seed": 1}
        (bag / "episode.json").write_text(json.dumps(meta))
    (tmp_path / "not_a_bag").mkdir()
    assert recorded_episodes(tmp_path) == [
        {"index": 0, "success": True, "elapsed_s": 1.5},
        {"index": 1, "success": False, "elapsed_s": 1.5},
    ]


def test_training_summary_reads_provenance_and_speed(tmp_path: Path) -> None:
    prov = {"steps": 100, "train_samples": 900, "image_size": [64, 64], "train_loss": 0.02}
    (tmp_path / "config.json").write_text(json.dumps({"provenance": prov}))
    (tmp_path / "train_log.csv").write_text(
        "step,train_loss,val_loss,samples_per_s\n10,0.5,,100.0\n20,,0.4,\n30,0.3,,140.0\n"
    )
    summary = training_summary(tmp_path)
    assert summary["steps"] == 100
    assert summary["samples_per_s_median"] == pytest.approx(120.0)
    assert summary["summary"] == "100 steps at 64x64, 900 samples"
    assert training_summary(tmp_path / "missing") == {}


def test_plot_eval_writes_a_png(tmp_path: Path) -> None:
    t = np.arange(0.0, 3.0, 0.02)
    snap = {
        "commands": [(float(x), [np.sin(x), np.cos(x)]) for x in t],
        "states": [(float(x) + 0.01, [np.sin(x - 0.05), np.cos(x - 0.05)]) for x in t],
        "chunks": [0.5, 1.0, 1.5],
        "joint_names": ["a", "b"],
    }
    path = tmp_path / "plot.png"
    plot_eval(snap, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # With the restart windows of an evaluation: a gap in the commands, a shaded span.
    snap["commands"] = [c for c in snap["commands"] if not 1.0 < c[0] < 1.6]
    snap["pauses"] = [(1.0, 1.1)]
    plot_eval(snap, path)
    assert path.stat().st_size > 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "gpt"},
        {"eval_episodes": 0},
        {"blending": "max"},
        {"train_steps": 0},
        {"task": "stack_blocks"},
    ],
)
def test_demo_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DemoConfig(**kwargs)


def test_demo_refuses_to_evaluate_on_the_training_seed() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--train-seed", "5", "--eval-seed", "5"])
    assert exc.value.code == 2


@pytest.mark.parametrize(("task", "policy"), [("reach", "mlp"), ("two_targets", "act")])
def test_report_names_the_task_and_the_policy(tmp_path: Path, task: str, policy: str) -> None:
    cfg = DemoConfig(task=task, policy=policy, out_dir=tmp_path)
    t = np.arange(0.0, 2.0, 0.02)
    snap = {
        "commands": [(float(x), [0.0, 0.1]) for x in t],
        "states": [(float(x), [0.0, 0.1]) for x in t],
        "chunks": [0.5, 1.0],
        "joint_names": ["a", "b"],
        "diagnostics": {},
        "pauses": [],
    }
    results = [{"index": 0, "success": True, "elapsed_s": 1.5}, {"index": 1, "success": False}]
    report = write_report(cfg, results, results, snap, tmp_path / "ckpt", 12.0, {"train": 3.0})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["task"] == report["task"] == task
    assert saved["policy"] == policy and saved["policy_success_rate"] == 0.5
    assert f"task: **{task}**" in (tmp_path / "report.md").read_text()
    assert saved["success_bar"] == {"reach": 0.9, "two_targets": 0.8}[task]


def test_every_task_has_a_success_bar() -> None:
    assert set(SUCCESS_BARS) == set(TASKS)


def test_report_measures_seams_and_leaves_resets_out(tmp_path: Path) -> None:
    cfg = DemoConfig(out_dir=tmp_path)
    t = np.arange(0.0, 4.0, 0.02)
    q = 0.01 * np.arange(len(t))
    q[t >= 1.0] += 0.05  # a chunk arriving at 1.0 jumps by 0.05
    q[t >= 3.0] += 1.0  # the sim reset at 3.0 snaps the arm: not a seam
    snap = {
        "commands": [(float(x), [float(v), 0.0]) for x, v in zip(t, q, strict=True)],
        "states": [(float(x), [float(v), 0.0]) for x, v in zip(t, q, strict=True)],
        "chunks": [1.0],
        "chunk_ends": [1.98],
        "resets": [3.0],
        "joint_names": ["a", "b"],
        "diagnostics": {},
        "pauses": [],
    }
    results = [{"index": 1, "success": True, "elapsed_s": 1.5}]
    report = write_report(cfg, results, results, snap, tmp_path / "ckpt", 12.0, {})
    assert report["seams"]["seam_max_step"] == pytest.approx(0.06)
    assert report["seams"]["inside_max_step"] == pytest.approx(0.01)
    assert report["animation"] is None  # no evaluation bags here
    assert "chunk seams" in (tmp_path / "report.md").read_text()


def test_animation_shows_each_frame_of_the_evaluation_bags(tmp_path: Path) -> None:
    from PIL import Image

    from robot_policy_ros.data.bag_reader import find_bags
    from robot_policy_ros.data.synthetic import SyntheticEpisode, write_synthetic_dataset
    from robot_policy_ros.demo.animation import write_animation

    spec = SyntheticEpisode(duration_s=2.0, image_hw=(48, 64), motion="reach")
    write_synthetic_dataset(tmp_path / "bags", 2, spec)
    gif = tmp_path / "eval.gif"
    topics = ("/front/image_raw", "/joint_states", "/forward_position_controller/commands")
    frames = write_animation(find_bags([tmp_path / "bags"]), gif, *topics, fps=5.0)
    assert frames >= 2 * 8  # 2 s per episode at 5 fps, both episodes
    with Image.open(gif) as im:
        assert im.n_frames == frames
        assert im.size[0] > 2 * 64 and im.size[1] >= 2 * 48

"""make bench: a smoke run writes the JSON (with the machine and every section), markdown, plots."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robot_policy_ros.inference.backends import available_backends
from robot_policy_ros.processes import PACKAGE_ROOT, isolated_ros_env


def test_bench_smoke_run_writes_results_with_every_field(tmp_path, ros_domain) -> None:
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "robot_policy_ros.bench.suite", "--smoke", "--runs", "2"]
    done = subprocess.run(
        [*cmd, "--out", str(out)],
        env=isolated_ros_env(ros_domain),
        cwd=str(PACKAGE_ROOT),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {"cpu", "logical_cores", "load_average_1_5_15", "torch", "threads"} <= set(
        results["machine"]
    )
    families = {r["policy"] for r in results["inference"]}
    assert families == {"mlp", "act", "diffusion"}
    for row in results["inference"]:
        graphs = [b for b in ("onnxruntime", "openvino") if b in available_backends()]
        assert "onnxruntime" in graphs
        for key in ("torch", *graphs, *(f"bare_graph_{b}" for b in graphs)):
            assert row["latency"][key]["median_ms"] > 0
        assert set(row["ratio_to_floor"]) == {"torch", *graphs}
        # the floor is the fastest runtime's bare graph, so no runtime's graph is below it
        floor = row["latency"][f"bare_graph_{row['fastest_runtime']}"]["median_ms"]
        assert all(row["latency"][f"bare_graph_{b}"]["median_ms"] >= floor for b in graphs)
        assert row["reference_resnet18"]["resnet18_torch"]["median_ms"] > 0
    assert results["transport"], "no transport rows"
    for row in results["transport"]:
        assert row["published"] > 0 and 0 <= row["received"] <= row["published"]
        assert {"delivered_fraction", "age_p50_ms", "age_p99_ms", "qos", "profile"} <= set(row)
    assert {r["mode"] for r in results["seams"]} == {
        "replace",
        "temporal_ensemble",
        "average",
        "crossfade",
    }
    assert {r["node"] for r in results["memory"]} == {
        "sim_robot",
        "policy_node",
        "command_streamer",
        "bag_recorder",
    }
    for row in results["memory"]:
        assert 0 < row["rss_first_mb"] <= row["rss_max_mb"]
    assert {r["policy"] for r in results["training"]} == {"mlp", "act", "diffusion"}
    for row in results["training"]:
        assert row["samples_per_s_median"] > 0 and row["steps"] > 0
    systems = {r["system"] for r in results["control_loop"]}
    assert systems == {"stack", "naive_timer", "chunk_loop"}
    for row in results["control_loop"]:
        # The baselines block on inference by design (the naive one inside its timer), so
        # on a loaded machine they may publish only a few commands in the smoke's seconds;
        # enough for period statistics is what the smoke checks. The stack must keep rate.
        if row["system"] == "stack":
            assert row["commands"] > 10, row
        else:
            assert row["commands"] >= 3, row
        assert row["period_error_p99_ms"] >= row["period_error_p50_ms"] >= 0
        assert row["missed_ticks"] >= 0 and len(row["error_quantiles_ms"]) > 0
        if row["system"] == "stack":
            assert row["p99_ratio_naive_timer"] > 0 and row["p99_ratio_chunk_loop"] > 0
    (camera,) = results["camera_to_command"]
    assert camera["samples"] > 0, camera
    latency, forward = camera["latency_ms"]["median"], camera["bare_forward_ms"]["median"]
    # the chunk computed from a frame comes after the frame, and its first command after both
    assert latency > camera["image_to_chunk_ms"]["min"] > 0 and forward > 0
    assert camera["stack_overhead_ms"] == pytest.approx(latency - forward)
    # policy_node's own split of frame -> chunk is reported (its diagnostics)
    assert camera["node_observation_build_median_ms"] > 0, camera
    assert camera["node_chunk_publish_median_ms"] > 0, camera
    assert camera["node_observation_age_median_ms"] > 0, camera
    md = (out / "results.md").read_text()
    assert md.startswith("# Benchmark results")
    assert "## Control loop" in md and "## Camera to command" in md
    assert "## Chunk seams" in md and "## Resident memory" in md and "## Training" in md
    plots = {"inference.png", "transport.png", "seams.png", "control_loop.png"}
    assert plots <= {p.name for p in out.iterdir()}

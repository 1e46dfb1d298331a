"""CPU/GPU inference latency of the policy families (same as ``robot-policy benchmark``).

Examples:
    .venv/bin/python benchmarks/inference_latency.py --image-size 224 --cameras 1 --threads 2
    .venv/bin/python benchmarks/inference_latency.py --policy act --runs 50 --json
    .venv/bin/python benchmarks/inference_latency.py --checkpoint /path/to/ckpt

Prints, per family: image size, cameras, torch threads, parameters, median and p95
predict_chunk latency in ms over --runs calls after --warmup calls.
"""

from __future__ import annotations

import argparse
import sys

from robot_policy_ros.cli.benchmark import add_benchmark_arguments, run_from_args


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

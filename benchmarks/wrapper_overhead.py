"""The policy wrapper's overhead over the bare network: MLP predict_chunk vs ResNet18.

Example:
    .venv/bin/python benchmarks/wrapper_overhead.py --threads 2 --runs 40 --sizes 224 64

Prints one JSON line per image size: medians (ms) of torchvision's ResNet18 in torch and in
ONNX Runtime, and of the MLP's predict_chunk per backend, all timed round-robin in one run.
"""

from robot_policy_ros.inference.threads import passive_omp_wait

passive_omp_wait()  # before torch loads (see robot_policy_ros.inference.threads)

from robot_policy_ros.bench.inference import main  # noqa: E402

if __name__ == "__main__":
    main()

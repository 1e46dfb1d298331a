# The two commands of the README: `make test` and `make demo` (and `make bench`).
VENV ?= .venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: venv test fuzz lint format demo bench clean

venv:
	@bash tools/setup_venv.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: venv lint
	$(PY) -m pytest

# Long property-based profile (not in make test): FUZZ_EXAMPLES cases per hypothesis target.
FUZZ_EXAMPLES ?= 10000
fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q test/test_images_malformed.py \
		test/test_observation_health.py test/test_chunk_buffer.py test/test_safety_filter.py \
		test/test_streamer_core.py test/test_trajectory_wire.py

demo: venv
	@bash tools/demo.sh

# Benchmark suite (robot_policy_ros/bench/suite.py): bench_output/results.{json,md} + plots.
bench: venv
	$(PY) -m robot_policy_ros.bench.suite --out bench_output

clean:
	rm -rf build install log .pytest_cache .ruff_cache demo_output bench_output

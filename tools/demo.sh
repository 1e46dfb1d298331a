#!/usr/bin/env bash
# `make demo`: record -> train -> deploy -> score on the embedded simulated arm.
# POLICY=act|diffusion picks another family, TASK=two_targets|cued_targets the other sim tasks; DEMO_ARGS
# go to the demo module.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec .venv/bin/python -m robot_policy_ros.demo --policy "${POLICY:-mlp}" --task "${TASK:-reach}" \
    ${DEMO_ARGS:-}

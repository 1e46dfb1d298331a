#!/usr/bin/env bash
# `make demo` placeholder until the record -> train -> deploy loop lands (issue 6).
cat <<'MSG'
make demo will: start the embedded simulated arm and camera, record demonstrations of
the scripted expert to rosbag2, train a policy on them, deploy it with policy_node and
command_streamer at 50 Hz through topic remapping, and report its success rate.

It is not implemented yet: there is no demo to run, so this exits non-zero.
MSG
exit 1

"""Delivery rate and age of camera frames at a subscriber, with and without config/fastdds.xml.

Example:
    .venv/bin/python benchmarks/image_transport.py --seconds 5 --sizes 640x480 1280x720

One JSON line per (image size, raw/compressed, best effort/reliable, profile or defaults).
"""

import sys

from robot_policy_ros.bench.transport import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m robot_policy_ros.demo``: the ``make demo`` entry point."""

import sys

from robot_policy_ros.demo.entry import main

sys.exit(main())

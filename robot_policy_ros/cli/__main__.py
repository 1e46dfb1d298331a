"""``python -m robot_policy_ros.cli``: the ``robot-policy`` console script."""

import sys

from robot_policy_ros.cli import main

sys.exit(main())

"""The DDS transport profile shipped in config/fastdds.xml, and the environment that uses it.

No rclpy here. ``dds_profile_env`` is what the launch files, the demo and the tests add to a
node's environment; it never overrides a profile the user chose, and does nothing when the
RMW is not Fast DDS (see doc/transport.md for CycloneDDS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
PROFILE_FILE = "fastdds.xml"


def fastdds_profile_path(share_dir: str | os.PathLike | None = None) -> Path:
    """config/fastdds.xml of the installed package (``share_dir``) or of this source tree."""
    root = Path(share_dir) if share_dir is not None else Path(__file__).resolve().parents[2]
    return root / "config" / PROFILE_FILE


def dds_profile_env(
    share_dir: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Variables to add so Fast DDS loads the shipped profile; {} when the user set their own.

    Both variable names are set (Fast DDS 2.x reads FASTRTPS_..., 3.x FASTDDS_...). Nothing
    is returned when either is already set, when RMW_IMPLEMENTATION names another RMW, or
    when the profile file is missing.
    """
    env = os.environ if environ is None else environ
    if any(env.get(v) for v in PROFILE_VARS):
        return {}
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and "fastrtps" not in rmw and "fastdds" not in rmw:
        return {}
    path = fastdds_profile_path(share_dir)
    if not path.is_file():
        return {}
    return dict.fromkeys(PROFILE_VARS, str(path))

"""Threading settings of the inference runtimes that must be made before torch loads.

torch's OpenMP pool busy-waits after every parallel region by default. On a CPU shared with
the control loop, the callbacks and other processes, that spinning steals the cores the
next region needs: on this project's loaded 2-core machine ResNet18 (224x224, 2 threads)
took 638 ms with spinning and 96 ms with ``OMP_WAIT_POLICY=PASSIVE`` (benchmarks/
wrapper_overhead.py). The ONNX Runtime backend disables its own spinning per session.
"""

from __future__ import annotations

import os
import sys


def passive_omp_wait() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user set it; True if it is now in effect.

    Only effective before the OpenMP runtime starts (before the first ``import torch``);
    returns False when torch was already imported or the user chose another policy.
    """
    if "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"

"""The demo's plots (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _with_breaks(t: np.ndarray, q: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN row wherever consecutive samples are more than ``max_gap`` apart, so a
    plotted line stops at a gap instead of drawing a ramp that never happened."""
    if len(t) < 2:
        return t, q
    gaps = np.flatnonzero(np.diff(t) > max_gap) + 1
    return (
        np.insert(t.astype(float), gaps, np.nan),
        np.insert(q.astype(float), gaps, np.nan, axis=0),
    )


def plot_eval(snapshot: dict[str, Any], path: Path, seconds: float = 20.0) -> None:
    """Commanded vs measured joint positions over the first ``seconds`` of the evaluation
    (from the first reset), chunk arrivals and the policy-stack restarts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commands, states = snapshot["commands"], snapshot["states"]
    if not commands or not states:
        return
    pauses = list(snapshot.get("pauses", ()))
    t0 = pauses[0][0] - 0.2 if pauses else commands[0][0]
    names = snapshot["joint_names"] or [f"joint {i}" for i in range(len(commands[0][1]))]
    n = len(commands[0][1])
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.0 * n), sharex=True)
    axes = np.atleast_1d(axes)
    ct = np.array([c[0] - t0 for c in commands])
    cq = np.array([c[1] for c in commands])
    st = np.array([s[0] - t0 for s in states])
    sq = np.array([s[1][:n] for s in states if len(s[1]) >= n])
    st = st[: len(sq)]
    keep_c, keep_s = (ct >= 0) & (ct <= seconds), (st >= 0) & (st <= seconds)
    ct, cq = _with_breaks(ct[keep_c], cq[keep_c], 0.1)
    st, sq = _with_breaks(st[keep_s], sq[keep_s], 0.1)
    chunk_t = [c - t0 for c in snapshot["chunks"] if 0 <= c - t0 <= seconds]
    spans = [(a - t0, b - t0) for a, b in pauses if 0 <= a - t0 <= seconds]
    for j, ax in enumerate(axes):
        for c in chunk_t:
            ax.axvline(c, color="grey", alpha=0.25, lw=0.6)
        for k, (a, b) in enumerate(spans):
            ax.axvspan(a, b, color="tab:green", alpha=0.15, lw=0, label="reset" if k == 0 else None)
        ax.plot(st, sq[:, j], label="measured", color="tab:blue")
        ax.plot(ct, cq[:, j], label="commanded", color="tab:orange", lw=1)
        ax.set_ylabel(f"{names[j] if j < len(names) else j}\n[rad]")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(
        "Evaluation: commanded vs measured joints (grey: chunk arrivals; green: episode reset, "
        "policy stack restarted)",
        fontsize=9,
    )
    axes[-1].set_xlabel("time since the first evaluation reset [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

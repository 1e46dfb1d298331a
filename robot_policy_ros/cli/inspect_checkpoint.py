"""``robot-policy inspect``: validate a checkpoint and print its summary."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def provenance_lines(provenance: dict[str, Any]) -> list[str]:
    """Extra ``robot-policy inspect`` lines for an imported policy (units, deployment)."""
    lines = []
    units = provenance.get("units")
    if isinstance(units, dict):
        pairs = ", ".join(
            f"{s:g}:{o:g}"
            for s, o in zip(units.get("scale", []), units.get("offset", []), strict=False)
        )
        lines.append(f"units:        ros = lerobot * scale + offset; scale:offset {pairs}")
    dep = provenance.get("deployment")
    if isinstance(dep, dict):
        lines.append(
            f"deployment:   n_action_steps {dep.get('n_action_steps')}, "
            f"temporal_ensemble_coeff {dep.get('temporal_ensemble_coeff')}"
        )
        for node, values in (dep.get("node_parameters") or {}).items():
            shown = ", ".join(f"{k} {v}" for k, v in sorted(values.items()))
            lines.append(f"  {node}: {shown}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print a checkpoint summary; non-zero exit (via CheckpointError) if invalid."""
    from robot_policy_ros.checkpoint.weights import describe_checkpoint, dumps_summary

    s = describe_checkpoint(args.checkpoint)
    if args.json:
        print(dumps_summary(s))
        return 0
    print(f"checkpoint:   {s['path']}")
    print(f"format:       {s['format_version']}")
    print(f"policy:       {s['policy_type']}")
    print(f"joints:       {len(s['joint_names'])}: {', '.join(s['joint_names'])}")
    cams = ", ".join(
        f"{c['name']} {c['height']}x{c['width']} {c['encoding']}" for c in s["cameras"]
    )
    print(f"cameras:      {cams}")
    print(f"fps:          {s['fps']:g}")
    print(f"chunk size:   {s['chunk_size']}")
    print(f"n_obs_steps:  {s['n_obs_steps']}")
    print(f"parameters:   {s['num_parameters']:,}")
    for name, size in s["files"].items():
        print(f"file:         {name} ({_human_bytes(size)}, {size} bytes)")
    print("limits:")
    for j in s["limits"]:
        extra = f", max_acceleration {j['max_acceleration']:g}" if "max_acceleration" in j else ""
        print(
            f"  {j['name']}: [{j['lower']:g}, {j['upper']:g}], "
            f"max_velocity {j['max_velocity']:g}{extra}"
        )
    prov = s["provenance"]
    for line in provenance_lines(prov):
        print(line)
    if prov:
        print(f"provenance:   {json.dumps(prov, sort_keys=True)}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``inspect`` on the robot-policy subparsers."""
    p = sub.add_parser(
        "inspect", help="print and validate a checkpoint", description="Validate and summarise."
    )
    p.add_argument("checkpoint", help="checkpoint directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)

"""Generate ``doc/parameters.md`` from the nodes' parameter tables.

Usage::

    python -m robot_policy_ros.params.reference            # print the reference
    python -m robot_policy_ros.params.reference --write    # rewrite doc/parameters.md
    python -m robot_policy_ros.params.reference --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from robot_policy_ros.core.params import ParamSpec
from robot_policy_ros.params import MANAGED_NODES, NODE_TABLES, node_table

DOC = Path(__file__).resolve().parents[2] / "doc" / "parameters.md"

_HEADER = """# Parameter reference

Generated from the nodes' parameter tables (`robot_policy_ros/params/`) by
`python -m robot_policy_ros.params.reference --write`; `make test` checks that it is
current. Do not edit by hand.

`ros2 param describe <node> <name>` shows the same description and range on a running
node. Parameters of the lifecycle-managed nodes (policy_node, command_streamer) are
writable while the node is *unconfigured* and read-only while it is *inactive* or
*active*: deactivate and clean up, set them, then configure again. The other nodes read
their parameters once at start-up.
"""


def _type_name(spec: ParamSpec) -> str:
    name = {bool: "bool", int: "int", float: "double", str: "string"}[spec.kind]
    return f"{name}[]" if spec.is_list else name


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(spec: ParamSpec) -> str:
    value = spec.default
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value!r}`"


def render_table(node: str, specs: Sequence[ParamSpec]) -> str:
    """One node's section: a markdown table of its parameters."""
    managed = node in MANAGED_NODES
    lines = [
        f"## {node}",
        "",
        "| name | type | default | allowed | writable | description |",
        "|---|---|---|---|---|---|",
    ]
    for spec in specs:
        if managed:
            writable = "while unconfigured"
        else:
            writable = "at start-up" if spec.read_only else "any time"
        allowed = spec.describe_range() or "any"
        if spec.check is not None:
            allowed += " (checked)"
        description = spec.description + (f" {spec.fix}" if spec.fix else "")
        lines.append(
            f"| `{spec.name}` | {_type_name(spec)} | {_cell(_default(spec))} | "
            f"{_cell(allowed)} | {writable} | {_cell(description)} |"
        )
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole reference document."""
    sections = [render_table(node, node_table(node)) for node in NODE_TABLES]
    return _HEADER + "\n" + "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate doc/parameters.md.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite {DOC}")
    group.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC}")
        return 0
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run python -m robot_policy_ros.params.reference --write")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``main()`` for the plain (non-lifecycle) nodes: spin until Ctrl-C / SIGTERM, exit cleanly.

The lifecycle nodes (policy_node, command_streamer) use
:func:`robot_policy_ros.nodes.lifecycle.run_nodes` instead, which also walks them to active.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from robot_policy_ros.core.params import ParameterError


def run_node(
    name: str,
    make_node: Callable[[], Node],
    *,
    args: Sequence[str] | None = None,
    make_executor: Callable[[], Executor] = SingleThreadedExecutor,
    config_errors: tuple[type[BaseException], ...] = (ParameterError,),
    on_stop: Callable[[Node], None] | None = None,
) -> int:
    """Build the node, spin it, and shut down cleanly; returns the process exit code.

    Exit codes: 0 on Ctrl-C / SIGTERM / external shutdown, 2 when building the node raised
    one of ``config_errors`` (the message names the bad value and goes to stderr).
    ``on_stop`` runs before the node is destroyed (close files, stop threads).
    """
    rclpy.init(args=list(args) if args is not None else None)
    node: Node | None = None
    code = 0
    try:
        node = make_node()
        executor = make_executor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except config_errors as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr, flush=True)
        code = 2
    except Exception:
        # A signal can shut the context down while the executor waits (RCLError "context
        # is not valid"): that is a normal stop. Anything while the context is alive is not.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            if on_stop is not None:
                on_stop(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return code

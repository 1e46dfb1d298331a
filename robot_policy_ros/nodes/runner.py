"""The one ``main()`` body of every node executable: :func:`run_nodes`.

Each node module has ``def main(args: list[str] | None = None) -> int`` that returns
``run_nodes([...], args=args)``, and ``if __name__ == "__main__": sys.exit(main())``
(the console scripts call ``sys.exit(main())`` too). :func:`run_nodes` initialises rclpy,
builds the nodes, walks the lifecycle (managed) nodes to *active* when their ``autostart``
parameter is true (so ``ros2 run`` just works), spins, and shuts everything down.

The process ends with exit code 0 on Ctrl-C (SIGINT), SIGTERM, when the context is shut
down (a node calling ``context.try_shutdown()``), and once every node is a managed one that
has taken the lifecycle ``shutdown`` transition (``ros2 lifecycle set <node> shutdown``).
It exits non-zero with the reason instead of hanging: 2 when a node cannot be built
because of a bad parameter, 1 when a managed node cannot be configured or activated.
Stopping is orderly: the signal only ends the spin; the nodes are deactivated (threads
joined), given their ``on_stop`` and destroyed while the ROS context is still valid, and
only then is it shut down, so no thread meets an invalid context.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from robot_policy_ros.core.params import ParameterError
from robot_policy_ros.nodes.lifecycle import ManagedNode, autostart_node


class _StopSignals:
    """SIGINT / SIGTERM handlers that only ask the spin loop to stop.

    rclpy's own handlers shut the context down at once, under the feet of the nodes'
    control, inference and writer threads ("context is invalid" errors); these leave it
    valid until the nodes are stopped. Before the spin starts (building, configuring) a
    signal raises KeyboardInterrupt, as Python's default SIGINT handler does; while
    spinning and while stopping it is only recorded (a second Ctrl-C does not cut the
    stop short).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.interrupt = True  # raise KeyboardInterrupt (before the spin loop runs)
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.interrupt:
            raise KeyboardInterrupt

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


# After the last node's shutdown transition, keep spinning this long so its ChangeState
# reply (already handed to DDS) is delivered before the node and its service go away.
SHUTDOWN_REPLY_GRACE_S = 0.3


def _all_finalized(nodes: Sequence[Node]) -> bool:
    """Every node is a managed node that took the ``shutdown`` transition."""
    return bool(nodes) and all(isinstance(n, ManagedNode) and n.finalized for n in nodes)


def _spin_until_stopped(
    executor: SingleThreadedExecutor, nodes: Sequence[Node], stop: _StopSignals
) -> None:
    """Spin until a signal, the context ending, or every node finalized (then a grace)."""
    stop.interrupt = False
    while not stop.requested and rclpy.ok():
        executor.spin_once(timeout_sec=0.1)
        if _all_finalized(nodes):
            deadline = time.monotonic() + SHUTDOWN_REPLY_GRACE_S
            while not stop.requested and rclpy.ok() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            return


def _program_name() -> str:
    """``camera_node`` for both ``camera_node`` and ``python -m ...nodes.camera_node``."""
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "robot_policy_ros"


def run_nodes(
    factories: Sequence[Callable[[], Node]],
    args: Sequence[str] | None = None,
    *,
    config_errors: tuple[type[BaseException], ...] = (ParameterError,),
    on_stop: Callable[[Any], None] | None = None,
) -> int:
    """Build, (auto)start and spin nodes until shutdown; returns the process exit code.

    Args:
        factories: build one node each (a node class, or a lambda with overrides), in order.
        args: command line for ``rclpy.init`` (``None``: ``sys.argv``).
        config_errors: exceptions from building a node that mean "bad configuration":
            the message (naming the value and the fix) goes to stderr and the code is 2.
        on_stop: called for each node before it is destroyed (close files, join threads),
            after a managed node has been deactivated and cleaned up.

    Exit codes: 0 clean shutdown (signal, context shut down, every node finalized), 1 a
    managed node failed to configure/activate at autostart, 2 a configuration error while
    building a node.
    """
    stop = _StopSignals()
    rclpy.init(
        args=list(args) if args is not None else None,
        signal_handler_options=rclpy.signals.SignalHandlerOptions.NO,
    )
    stop.install()
    nodes: list[Node] = []
    code = 0
    executor = None
    try:
        for factory in factories:
            try:
                nodes.append(factory())
            except config_errors as exc:
                print(f"{_program_name()}: configuration error: {exc}", file=sys.stderr, flush=True)
                return 2
        for node in nodes:
            if isinstance(node, ManagedNode) and node.autostart:
                reason = autostart_node(node)
                if reason:
                    node.log.fatal(f"could not start: {reason}")
                    return 1
        # Callbacks only hand data to the nodes' own threads (O(1) each), so one executor
        # thread is enough; more would compete with those threads for the GIL (and
        # rclpy's MultiThreadedExecutor's bookkeeping grew to a whole core in sim_robot).
        executor = SingleThreadedExecutor()
        for node in nodes:
            executor.add_node(node)
        _spin_until_stopped(executor, nodes, stop)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # The context shut down by a node while the executor waits (RCLError "context is
        # not valid") is a normal stop. Anything while the context is alive is not.
        if rclpy.ok():
            raise
    finally:
        stop.interrupt = False  # signals from here on: recorded only
        for node in nodes:
            if isinstance(node, ManagedNode):
                node.shutdown_quietly()
                node.log.close()
            if on_stop is not None:
                on_stop(node)
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        stop.restore()
    return code

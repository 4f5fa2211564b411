"""The ``~/ask`` action server of ``spatial_reasoner`` (``actial_ros_msgs/action/AskSpatial``).

A goal is one free-form question about the latest pair or frame. The server hands it to the engine
(:meth:`actial_ros.reasoner.SpatialReasoner.submit_ask`, which always answers: with the reply, or with an
``error`` record when no frame exists, the request goes stale or is dropped) and waits for that answer
while publishing feedback (``queued``, then ``asking`` when a worker starts on it, then the reply so far
in ``partial_text`` as a streaming backend such as vLLM generates it) and honouring a cancel.
The answer is the result and, like every answer, is also published on ``~/answers`` by the node.

A goal waits (blocking) for its answer, so goals do not run on the node's executor: the action server lives
on an internal node (``<node>_ask``, its only entity) spun by its own multi-threaded executor on a
background thread, and is named under the node (``/<namespace>/<node>/ask``, what ``~/ask`` means). The node
itself keeps rclpy's single-threaded executor: with a multi-threaded one (tried first), ingestion slowed
enough under load that images were lost inside DDS in the tests. A goal with an invalid question or target
is aborted at once with ``status`` ``error`` and the reason (the client learns why, which a rejection would
not tell it), and counted (``on_bad_request``: ``warn_bad_ask`` in /diagnostics). A goal's ``timeout_s``
that is not a positive finite number means the node's default. The goal, cancel and execute callbacks are
behind a guard: an exception escaping them is reported (``on_internal_error``: ``drop_internal_error``, its
traceback logged once) and the goal is aborted with ``status`` ``error``; the node goes on.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.action.server import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from actial_ros.ask import ASK_TARGETS, MAX_QUESTION_CHARS
from actial_ros.nodes.answer_msgs import record_to_answer_msg
from actial_ros.reasoner import SpatialReasoner
from actial_ros.records import AskRecord, Record, ask_record, internal_error_reason
from actial_ros_msgs.action import AskSpatial
from actial_ros_msgs.msg import ViewpointAnswer

__all__ = ['AskActionServer']

_POLL_S = 0.05


class _Waiting:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.record: AskRecord | None = None
        self.stage = 'queued'
        self.partial_text = ''


class AskActionServer:
    """Serves ``AskSpatial`` goals on ``<node>/ask`` with the node's engine.

    Args:
        node: the node that owns the server.
        engine: the reasoner that answers.
        default_timeout_s: a goal's timeout when it gives none (``timeout_s <= 0``), seconds.
        now_ns: the node clock's time (ns), for answer stamps.
        is_active: whether the node is active; goals arriving otherwise are rejected.
        on_bad_request: called once per goal aborted as a bad request (empty or too long question, unknown
            target).
        on_internal_error: called with a callback's name when an exception escapes it (a bug); called
            from inside the ``except`` block, so it may log the traceback.
    """

    def __init__(
        self,
        *,
        node: Node,
        engine: SpatialReasoner,
        default_timeout_s: float,
        now_ns: Callable[[], int],
        is_active: Callable[[], bool] = lambda: True,
        on_bad_request: Callable[[], None] = lambda: None,
        on_internal_error: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._node = node
        self._is_active = is_active
        self._on_bad_request = on_bad_request
        self._on_internal_error = on_internal_error
        self._engine = engine
        self._default_timeout_s = default_timeout_s
        self._now_ns = now_ns
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._helper = rclpy.create_node(f'{node.get_name()}_ask', namespace=node.get_namespace(), context=node.context)
        self._server = ActionServer(
            self._helper,
            AskSpatial,
            f'{node.get_fully_qualified_name()}/ask',
            execute_callback=self._execute_guarded,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=ReentrantCallbackGroup(),
        )
        self._executor = MultiThreadedExecutor(num_threads=4, context=node.context)
        self._executor.add_node(self._helper)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name='ask-action', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        # spin_once in a loop that destroy() ends before it shuts the executor down: the executor is never
        # shut down under a running spin (on Humble, Executor.shutdown clears a guard condition that a
        # running wait still uses, and MultiThreadedExecutor there has no shutdown of its own).
        with contextlib.suppress(ExternalShutdownException):  # the context shut down (Ctrl-C): nothing to serve
            while not self._stop.is_set() and self._helper.context.ok():
                self._executor.spin_once(timeout_sec=_POLL_S)

    def deliver(self, record: Record) -> None:
        """Hand an ask's answer record to the goal waiting for it (called for every answer record)."""
        if not isinstance(record, AskRecord):
            return
        with self._lock:
            waiting = self._waiting.get(record.id)
        if waiting is not None:
            waiting.record = record
            waiting.done.set()

    def destroy(self) -> None:
        """Destroy the action server, stop its executor thread and its node."""
        self._stop.set()
        self._thread.join(2.0)
        self._server.destroy()
        self._executor.shutdown(timeout_sec=2.0)
        self._helper.destroy_node()

    def _result(self, record: AskRecord) -> AskSpatial.Result:
        result = AskSpatial.Result()
        result.answer = record_to_answer_msg(record, stamp_ns=self._now_ns())
        result.status = result.answer.status
        result.reason = result.answer.reason
        return result

    def _error(self, goal_id: str, question: str, reason: str) -> AskRecord:
        return ask_record(goal_id, question, [], None, '', reason)

    def _on_goal(self, goal: Any) -> GoalResponse:
        try:
            return GoalResponse.ACCEPT if self._is_active() else GoalResponse.REJECT
        except Exception:
            self._on_internal_error('ask goal')
            return GoalResponse.REJECT

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _execute_guarded(self, goal_handle: Any) -> AskSpatial.Result:
        """:meth:`_execute` behind the guard: whatever escapes it is reported and the goal aborted."""
        try:
            return self._execute(goal_handle)
        except Exception as exc:
            self._on_internal_error('ask action')
            with contextlib.suppress(Exception):  # it may already be terminal
                goal_handle.abort()
            # Built field by field, not by _result(): what failed may be _result itself (now_ns, the message).
            result = AskSpatial.Result()
            result.status = ViewpointAnswer.STATUS_ERROR
            result.reason = internal_error_reason(exc)
            result.answer.status, result.answer.reason = result.status, result.reason
            return result

    def _execute(self, goal_handle: Any) -> AskSpatial.Result:
        goal = goal_handle.request
        goal_id = bytes(goal_handle.goal_id.uuid).hex()
        question, target = str(goal.question), str(goal.target) or 'pair'
        problem = None
        if not question.strip():
            problem = 'the question is empty'
        elif len(question) > MAX_QUESTION_CHARS:
            problem = f'the question of {len(question)} characters exceeds {MAX_QUESTION_CHARS}'
        elif target not in ASK_TARGETS:
            problem = f'target must be one of {list(ASK_TARGETS)}, got {target[:40]!r}'
        if problem is not None:
            self._on_bad_request()
            goal_handle.abort()
            return self._result(self._error(goal_id, question, f'bad request: {problem}'))

        waiting = _Waiting()
        with self._lock:
            self._waiting[goal_id] = waiting

        def on_stage(stage: str) -> None:  # from the engine's worker thread; publishing is thread-safe
            waiting.stage = stage
            if not waiting.done.is_set():
                self._feedback(goal_handle, waiting)

        def on_text(text: str) -> None:  # the reply so far, from a streaming backend (worker thread)
            waiting.partial_text = text
            if not waiting.done.is_set():
                self._feedback(goal_handle, waiting)

        try:
            accepted = self._engine.submit_ask(
                ask_id=goal_id,
                prompt=question,
                target=target,
                camera_id=str(goal.camera) or None,
                on_stage=on_stage,
                on_text=on_text,
            )
            if not accepted:
                goal_handle.abort()
                return self._result(self._error(goal_id, question, 'dropped: ingest_queue_full'))
            timeout_s = float(goal.timeout_s)
            if not (math.isfinite(timeout_s) and timeout_s > 0):
                timeout_s = self._default_timeout_s
            deadline = time.monotonic() + timeout_s
            self._feedback(goal_handle, waiting)
            while not waiting.done.wait(_POLL_S):
                if goal_handle.is_cancel_requested:
                    goal_handle.canceled()
                    return self._result(self._error(goal_id, question, 'canceled'))
                if time.monotonic() > deadline:
                    goal_handle.abort()
                    return self._result(self._error(goal_id, question, f'timed out after {timeout_s:g} s'))
            assert waiting.record is not None
            if waiting.record.status == ViewpointAnswer.STATUS_ERROR:
                goal_handle.abort()
            else:
                goal_handle.succeed()
            return self._result(waiting.record)
        finally:
            with self._lock:
                self._waiting.pop(goal_id, None)

    @staticmethod
    def _feedback(goal_handle: Any, waiting: _Waiting) -> None:
        feedback = AskSpatial.Feedback()
        feedback.stage = waiting.stage
        feedback.partial_text = waiting.partial_text
        goal_handle.publish_feedback(feedback)

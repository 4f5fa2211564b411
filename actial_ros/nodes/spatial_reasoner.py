"""``spatial_reasoner``: the rclpy adapter around :class:`actial_ros.reasoner.SpatialReasoner`.

Subscribes:
    ``image_topic`` (sensor_msgs/Image, or sensor_msgs/CompressedImage with ``image_transport:=compressed``),
    ``camera_info_topic`` (sensor_msgs/CameraInfo), ``odometry_topic`` (nav_msgs/Odometry),
    ``~/ask_json`` (std_msgs/String, JSON ``{"id": ..., "question": ..., "target": "pair"|"frame"}``; only
    with ``json_interface:=true``).
Publishes:
    ``~/answers`` (actial_ros_msgs/ViewpointAnswer, one per answer: viewpoint questions and asks),
    ``~/answers_json`` (std_msgs/String, the same records in their JSON form, ``to_json_dict`` of
    :mod:`actial_ros.records`; only with ``json_interface:=true``), ``/diagnostics`` (diagnostic_msgs/DiagnosticArray),
    ``~/pair_image`` (sensor_msgs/Image) and ``~/markers`` (visualization_msgs/MarkerArray), rendered only
    while subscribed (:mod:`actial_ros.nodes.pair_visuals`).
Action server:
    ``~/ask`` (actial_ros_msgs/action/AskSpatial): a free-form question about the latest pair or frame,
    with feedback and cancel (:mod:`actial_ros.nodes.ask_action`).

Callbacks only hand messages to the engine (O(1)); decoding, pairing and model calls run on the
engine's threads, so a slow or dead backend never blocks ingestion.

Why one module of about 650 lines: it is the one rclpy class of the node (lifecycle transitions,
subscriptions with their QoS events and guards, publishers), all of it on the node's own state; the parts
that stand alone live beside it (:mod:`~actial_ros.nodes.spatial_reasoner_parameters`,
:mod:`~actial_ros.nodes.answer_msgs`, :mod:`~actial_ros.nodes.ask_action`,
:mod:`~actial_ros.nodes.pair_visuals`, :mod:`~actial_ros.nodes.camera_params`,
:mod:`~actial_ros.nodes.reasoner_diagnostics`).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from traceback import format_exc
from typing import Any

import rclpy
import rclpy.time
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import (
    SetParametersResult,
)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from actial_ros.ask import AskRequestError, loose_ask_id, parse_ask_request
from actial_ros.backends.base import Backend
from actial_ros.enums import DropReason
from actial_ros.errors import ActialError, BackendError, ConfigError
from actial_ros.frame import CameraIntrinsics, Pair
from actial_ros.imaging import compressed_msg_to_rgb, image_msg_to_rgb
from actial_ros.live_report import LiveReport
from actial_ros.message_fields import camera_info_to_intrinsics, odometry_to_transform, stamp_to_ns, transform_to_matrix
from actial_ros.nodes.answer_msgs import record_to_answer_msg
from actial_ros.nodes.ask_action import AskActionServer
from actial_ros.nodes.camera_params import CameraSpec, declare_additional_cameras, extrinsic_from_values
from actial_ros.nodes.delivery_events import DeliveryMonitor, with_message_info
from actial_ros.nodes.descriptors import declare_parameters
from actial_ros.nodes.entry import run_node
from actial_ros.nodes.pair_visuals import PairVisuals
from actial_ros.nodes.qos import qos_profile
from actial_ros.nodes.reasoner_diagnostics import CameraReport, ReasonerDiagnostics
from actial_ros.nodes.spatial_reasoner_parameters import PARAMETERS, SpatialReasonerSettings
from actial_ros.parameter_spec import check_choices
from actial_ros.reasoner import SpatialReasoner
from actial_ros.records import AnswerRecord, Record, ask_record
from actial_ros_msgs.msg import ViewpointAnswer

__all__ = ['SpatialReasonerNode', 'main']


_IMAGE_TRANSPORTS: dict[str, tuple[Any, Any]] = {
    'raw': (Image, image_msg_to_rgb),
    'compressed': (CompressedImage, compressed_msg_to_rgb),
}
"""``image_transport`` -> (message type, decoder to ``(H, W, 3)`` uint8 RGB)."""


class SpatialReasonerNode(LifecycleNode):
    """ROS 2 managed (lifecycle) node asking Actial viewpoint questions about camera frame pairs and scoring
    the answers against odometry. See the module docstring for topics; parameters are listed in
    :data:`PARAMETERS` and ``config/spatial_reasoner.yaml``.

    Lifecycle (REP-less ROS 2 managed nodes, ``lifecycle_msgs`` services ``~/change_state``, ``~/get_state``):

    * configure: validate the parameters, build the backend and probe it (the model server reachable and
      serving the model); a probe failure fails the transition when ``require_model_server`` is true and
      configures DEGRADED (logged; answers are errors until the server is back) otherwise; create the
      publishers, the ``~/ask`` action server and the engine (its threads start, idle).
    * activate: the subscriptions and the diagnostics timer; the publishers publish.
    * deactivate: the subscriptions and the timer go; the buffers, scores and queued questions stay;
      answers finished while inactive are not published; ``~/ask`` goals are rejected.
    * cleanup / shutdown: stop the engine, close the backend, destroy everything configure created.

    With ``autostart`` (default true) the constructor configures and activates at once, as an unmanaged
    node would start.

    Args:
        backend: use this backend instead of the one named by the parameters (tests, embedding).

    Raises:
        ConfigError: with ``autostart``: invalid parameters, or an unusable model server with
            ``require_model_server`` (the configure transition's reason).
    """

    def __init__(self, *, backend: Backend | None = None, **kwargs: Any) -> None:
        super().__init__('spatial_reasoner', **kwargs)
        declare_parameters(self, PARAMETERS)
        self._given_backend = backend
        try:
            transport = str(self.get_parameter('image_transport').value)
            self._additional: list[CameraSpec] = declare_additional_cameras(self, default_transport=transport)
            self._camera_error: ConfigError | None = None
        except ConfigError as error:  # reported by configure
            self._additional, self._camera_error = [], error
        self.configure_error = ''
        """Why the last configure failed ('' when it did not)."""
        # Created by configure, destroyed by cleanup.
        self._backend: Backend | None = None
        self._engine: SpatialReasoner | None = None
        self._ask_action: AskActionServer | None = None
        self._answers: Any = None
        self._answers_json: Any = None
        self._diagnostics: Any = None
        self._pair_image: Any = None
        self._markers: Any = None
        self._visuals: PairVisuals | None = None
        self._report: LiveReport | None = None
        self._report_path = ''
        self._reset_scores: Any = None
        self._odometry_frame_id = ''
        self._cameras: list[CameraSpec] = []
        self._settings_in_force: SpatialReasonerSettings | None = None
        self._json_interface = False
        self._require_camera_info = False
        self._tf: Any = None
        self._camera_frames: dict[str, str] = {}
        self._tf_extrinsics: set[str] = set()
        # Created by activate, destroyed by deactivate.
        self._active = False
        self._subscriptions_live: list[Any] = []
        self._timers_live: list[Any] = []
        # Counters of this node's own (reset by configure).
        self._intrinsics: dict[str, CameraIntrinsics | None] = {}
        self._received: dict[str, int] = {}
        self._warnings: dict[str, int] = {}
        self._tracebacks_logged: set[str] = set()
        self._delivery = DeliveryMonitor(logger=self.get_logger(), count=self._count_delivery, guard=self._guarded)
        self._dds_lost: dict[str, int] = {}
        self._diagnostics_builder = ReasonerDiagnostics()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if bool(self.get_parameter('autostart').value):
            self.autostart()

    def autostart(self) -> None:
        """Configure, then activate.

        Raises:
            ConfigError: a transition failed (the configure failure's reason).
        """
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError(self.configure_error or 'configure failed')
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise ConfigError('activate failed')

    @property
    def active(self) -> bool:
        """True in the active state."""
        return self._active

    @property
    def engine(self) -> SpatialReasoner:
        """The engine (inactive and active states).

        Raises:
            ConfigError: the node is not configured.
        """
        if self._engine is None:
            raise ConfigError('spatial_reasoner is not configured')
        return self._engine

    @property
    def backend(self) -> Backend:
        """The backend (inactive and active states).

        Raises:
            ConfigError: the node is not configured.
        """
        if self._backend is None:
            raise ConfigError('spatial_reasoner is not configured')
        return self._backend

    # -- lifecycle transitions -------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ActialError as error:
            self.configure_error = str(error)
            self.get_logger().error(f'configure failed: {error}')
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.configure_error = ''
        return super().on_configure(state)

    def _configure(self) -> None:
        if self._camera_error is not None:
            raise self._camera_error
        values = self._values()
        settings = SpatialReasonerSettings.from_values(values)
        config = settings.reasoner_config()
        primary = CameraSpec(
            camera_id=settings.camera_id,
            image_topic=settings.image_topic,
            image_transport=settings.image_transport,
            camera_info_topic=settings.camera_info_topic,
            extrinsic=self._extrinsic(settings),
        )
        self._cameras = [primary, *self._additional]
        check_choices(PARAMETERS, values)  # transports and QoS names (the additional cameras' at declaration)
        self._settings_in_force = settings
        self._require_camera_info = settings.require_camera_info
        self._json_interface = settings.json_interface
        self._backend = self._given_backend if self._given_backend is not None else settings.create_backend()
        try:
            self._backend.probe()
        except BackendError as error:
            if settings.require_model_server:
                raise ConfigError(f'the {self._backend.name} backend is not usable: {error}') from error
            self.get_logger().warning(
                f'configured DEGRADED: the {self._backend.name} backend is not usable now ({error}); its answers are '
                'errors until it is (require_model_server:=true refuses to configure instead)'
            )
        self._intrinsics = {camera.camera_id: None for camera in self._cameras}
        self._received = {camera.camera_id: 0 for camera in self._cameras}
        self._diagnostics_builder = ReasonerDiagnostics()  # rates and new drops against this engine's counters
        self._answers = self.create_lifecycle_publisher(ViewpointAnswer, '~/answers', 100)
        if self._json_interface:
            self._answers_json = self.create_lifecycle_publisher(String, '~/answers_json', 100)
        self._diagnostics = self.create_lifecycle_publisher(DiagnosticArray, '/diagnostics', 10)
        self._pair_image = self.create_lifecycle_publisher(Image, '~/pair_image', 5)
        self._markers = self.create_lifecycle_publisher(MarkerArray, '~/markers', 10)
        self._visuals = visuals = PairVisuals(
            image_publisher=self._pair_image,
            marker_publisher=self._markers,
            odometry_frame=lambda: self._odometry_frame_id,
        )
        hooks = [self._guarded('pair_visuals', visuals.on_pair_answer)]
        self._report_path = settings.report_path
        if self._report_path:
            self._report = LiveReport(max_pairs=settings.report_max_pairs)
            hooks.append(self._guarded('report', self._report.add))

        def on_pair_answer(pair: Pair, record: AnswerRecord) -> None:
            for hook in hooks:
                hook(pair, record)

        self._engine = SpatialReasoner(
            backend=self._backend,
            config=config,
            on_answer=self._publish_answer,
            extrinsics={camera.camera_id: camera.extrinsic for camera in self._cameras},
            on_pair_answer=on_pair_answer,
        )
        if settings.extrinsics_from_tf:
            self._start_tf(settings.base_frame)
        self._engine.start()
        self._reset_scores = self.create_service(Trigger, '~/reset_scores', self._on_reset_scores)
        self._ask_action = AskActionServer(
            node=self,
            engine=self._engine,
            default_timeout_s=settings.max_request_age_s,
            now_ns=lambda: self.get_clock().now().nanoseconds,
            is_active=lambda: self._active,
            on_bad_request=lambda: self._warn('bad_ask'),
            on_internal_error=self._report_internal_error,
        )
        self.get_logger().info(
            f'configured: asking {[t.value for t in config.question_types]} about pairs with '
            f'{config.pair_policy.min_yaw_deg:g} <= |yaw| <= {config.pair_policy.max_yaw_deg:g} deg from '
            f'{", ".join(f"{c.image_topic} ({c.image_transport})" for c in self._cameras)} + '
            f'{settings.odometry_topic} with the {self._backend.name} backend'
        )

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        settings = self._settings_in_force
        if settings is None:  # the lifecycle activates only a configured node
            raise ConfigError('spatial_reasoner is not configured')
        image_qos = qos_profile(settings.image_qos, settings.qos_depth)
        odom_qos = qos_profile(settings.odometry_qos, settings.qos_depth)
        for camera in self._cameras:
            self._subscribe_camera(camera, image_qos)
        self._subscribe(Odometry, settings.odometry_topic, 'odometry', self._on_odometry, odom_qos)
        if self._json_interface:
            self._subscribe(String, '~/ask_json', 'ask', self._on_ask, 10)
        period_s = settings.diagnostics_period_s
        self._timers_live.append(self.create_timer(period_s, self._guarded('diagnostics', self._publish_diagnostics)))
        if self._tf is not None:
            self._timers_live.append(self.create_timer(0.5, self._guarded('tf_lookup', self._lookup_extrinsics)))
        self._active = True
        self.get_logger().info('active')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up (unconfigured)')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _deactivate(self) -> None:
        self._active = False
        for subscription in self._subscriptions_live:
            self.destroy_subscription(subscription)
        for timer in self._timers_live:
            self.destroy_timer(timer)
        self._subscriptions_live, self._timers_live = [], []

    def _release(self) -> None:
        """Undo configure (idempotent): engine, backend, action server, publishers, tf."""
        self._deactivate()
        if self._ask_action is not None:
            self._ask_action.destroy()
            self._ask_action = None
        if self._reset_scores is not None:
            self.destroy_service(self._reset_scores)
            self._reset_scores = None
        if self._engine is not None:
            self._engine.stop()
            self._engine = None
        if self._report is not None:  # after the engine stopped (it waits for its workers, 5 s at most)
            self._write_report(self._report)
            self._report = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        for name in ('_answers', '_answers_json', '_diagnostics', '_pair_image', '_markers'):
            publisher = getattr(self, name)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
                setattr(self, name, None)
        self._visuals = None
        self._tf = None
        self._camera_frames, self._tf_extrinsics = {}, set()

    def _subscribe_camera(self, camera: CameraSpec, qos: QoSProfile) -> None:
        camera_id = camera.camera_id
        image_type, decode = _IMAGE_TRANSPORTS[camera.image_transport]  # validated by configure
        self._subscribe(
            image_type, camera.image_topic, 'image', lambda msg: self._submit(camera_id, msg, decode), qos, camera_id
        )
        self._subscribe(
            CameraInfo,
            camera.camera_info_topic,
            'camera_info',
            lambda msg: self._on_camera_info(camera_id, msg),
            qos,
            camera_id,
        )

    def _subscribe(
        self,
        msg_type: Any,
        topic: str,
        name: str,
        callback: Callable[[Any], None],
        qos: QoSProfile | int,
        camera_id: str | None = None,
    ) -> None:
        """Subscribe behind the guard, counting what DDS lost on the way (sequence gaps, QoS events)."""

        def on_message(msg: Any, info: Any) -> None:
            self._note_delivery(topic, camera_id, info)
            callback(msg)

        self._subscriptions_live.append(
            self.create_subscription(
                msg_type,
                topic,
                with_message_info(self._guarded(name, on_message)),
                qos,
                event_callbacks=self._delivery.event_callbacks(topic, name),
            )
        )

    def _note_delivery(self, topic: str, camera_id: str | None, info: Any) -> None:
        lost = self._delivery.observe(topic, info)
        if lost and camera_id is not None:
            self._dds_lost[camera_id] = self._dds_lost.get(camera_id, 0) + lost

    def _count_delivery(self, key: str, count: int) -> None:
        """A loss the delivery monitor saw: messages missing from a sequence are drops, events warnings."""
        if key == 'dds_lost':
            self._drop(DropReason.DDS_LOST, count)
        else:
            self._warn(key, count)

    # -- parameters ----------------------------------------------------------------------------

    def _values(self, overrides: Sequence[Parameter[Any]] = ()) -> dict[str, Any]:
        values = {param.name: self.get_parameter(param.name).value for param in PARAMETERS}
        for parameter in overrides:
            values[parameter.name] = parameter.value
        return values

    @staticmethod
    def _extrinsic(settings: SpatialReasonerSettings) -> Any:
        return extrinsic_from_values(
            settings.extrinsic_translation, settings.extrinsic_rotation_xyzw, name='camera extrinsic'
        )

    def _on_set_parameters(self, parameters: list[Parameter[Any]]) -> SetParametersResult:
        settings = SpatialReasonerSettings.from_values(self._values(parameters))
        try:
            config = settings.reasoner_config()
            extrinsic = self._extrinsic(settings)
        except ConfigError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if self._engine is not None:  # configured: applied live; else at the next configure
            self._engine.reconfigure(config)
            self._engine.buffer.set_extrinsic(self._cameras[0].camera_id, extrinsic)
        self._require_camera_info = settings.require_camera_info
        return SetParametersResult(successful=True)

    # -- callbacks (store and return) ----------------------------------------------------------

    def _write_report(self, report: LiveReport) -> None:
        try:
            path = report.write(self._report_path, title=f'actial_ros {self.get_fully_qualified_name()}')
        except Exception as error:  # never in the way of the node's clean-up (backend, publishers)
            self.get_logger().error(f'could not write the report {self._report_path}: {error!r}')
            return
        self.get_logger().info(
            f'report of the latest {report.pairs_held} pairs ({report.pairs_dropped} older dropped) written to {path}'
        )

    def _guarded(self, name: str, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback`` behind the node's boundary: no message or payload can end the node.

        Expected bad input is handled inside each callback (counted drops, error replies). Anything
        else that escapes is a bug: counted as ``internal_error`` (``drop_internal_error`` in
        /diagnostics), logged with its traceback the first time per callback and throttled after.
        """

        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                self._report_internal_error(name)

        return guarded

    def _report_internal_error(self, name: str) -> None:
        """Count the exception being handled as ``internal_error`` and log it: with its traceback the first
        time per callback ``name``, throttled after. Call it from inside an ``except`` block."""
        self._drop(DropReason.INTERNAL_ERROR)
        if name not in self._tracebacks_logged:
            self._tracebacks_logged.add(name)
            self.get_logger().error(f'{name} callback failed (counted; the node goes on):\n{format_exc()}')
        else:
            self.get_logger().error(
                f'{name} callback failed again: {format_exc(limit=0).strip()}', throttle_duration_sec=10.0
            )

    def _drop(self, reason: DropReason, count: int = 1) -> None:
        if self._engine is not None:
            self._engine.count_drop(reason, count)

    def _warn(self, key: str, count: int = 1) -> None:
        self._warnings[key] = self._warnings.get(key, 0) + count

    def _stamp(self, msg: Any) -> int | None:
        try:
            return stamp_to_ns(msg.header.stamp)
        except ValueError:
            self.engine.count_drop(DropReason.BAD_IMAGE)
            return None

    def _submit(self, camera_id: str, msg: Any, decode: Any) -> None:
        self._received[camera_id] += 1
        stamp_ns = self._stamp(msg)
        if stamp_ns is None:
            return
        if self._tf is not None and camera_id not in self._tf_extrinsics:
            self._camera_frames.setdefault(camera_id, str(msg.header.frame_id))
            self.engine.count_drop(DropReason.NO_EXTRINSIC)
            return
        intrinsics = self._intrinsics[camera_id]
        if intrinsics is None:
            self._warn('no_camera_info')
            if self._require_camera_info:
                self.engine.count_drop(DropReason.NO_CAMERA_INFO)
                return
        self.engine.submit_image(
            camera_id=camera_id, stamp_ns=stamp_ns, decode=lambda: decode(msg), intrinsics=intrinsics
        )

    def _start_tf(self, base_frame: str) -> None:
        try:
            import tf2_ros
        except ImportError as error:
            raise ConfigError('extrinsics_from_tf needs tf2_ros (a ROS 2 install); it is not importable') from error
        buffer = tf2_ros.Buffer()
        self._tf = (buffer, tf2_ros.TransformListener(buffer, self), base_frame)

    def _lookup_extrinsics(self) -> None:
        """Resolve ``base_frame -> camera frame`` for cameras seen but not yet resolved (timer)."""
        buffer, _, base_frame = self._tf
        for camera_id, frame_id in list(self._camera_frames.items()):
            if camera_id in self._tf_extrinsics:
                continue
            try:
                stamped = buffer.lookup_transform(base_frame, frame_id, rclpy.time.Time())
                extrinsic = transform_to_matrix(stamped.transform)
            except Exception as error:  # tf2 raises several lookup exception types
                self.get_logger().info(f'waiting for tf {base_frame} -> {frame_id}: {error}', throttle_duration_sec=5.0)
                continue
            self.engine.buffer.set_extrinsic(camera_id, extrinsic)
            self._tf_extrinsics.add(camera_id)
            self.get_logger().info(f'camera {camera_id}: extrinsic from tf {base_frame} -> {frame_id}')

    def _on_camera_info(self, camera_id: str, msg: CameraInfo) -> None:
        try:
            self._intrinsics[camera_id] = camera_info_to_intrinsics(msg)
        except ActialError as error:
            self.engine.count_drop(DropReason.BAD_CAMERA_INFO)
            self.get_logger().warning(f'ignored CameraInfo: {error}', throttle_duration_sec=5.0)

    def _on_odometry(self, msg: Odometry) -> None:
        try:
            stamp_ns = stamp_to_ns(msg.header.stamp)
        except ValueError:
            self.engine.count_drop(DropReason.BAD_ODOMETRY)
            return
        self._odometry_frame_id = str(msg.header.frame_id)
        self.engine.submit_odometry(stamp_ns=stamp_ns, decode=lambda: odometry_to_transform(msg))

    def _on_ask(self, msg: String) -> None:
        try:
            request = parse_ask_request(msg.data)
        except AskRequestError as error:
            self._warn('bad_ask')
            self.get_logger().warning(f'ignored ~/ask_json request: {error}', throttle_duration_sec=5.0)
            self._publish_answer(ask_record(loose_ask_id(msg.data), '', [], None, '', f'bad request: {error}'))
            return
        self.engine.submit_ask(ask_id=request.ask_id, prompt=request.question, target=request.target)

    def _on_reset_scores(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """``~/reset_scores`` (std_srvs/Trigger): forget the running accuracy and latencies (behind the guard:
        a failure is counted and answered with ``success`` false)."""
        try:
            asked = self.engine.scores.reset()
            response.success, response.message = True, f'scores of {asked} viewpoint questions cleared'
        except Exception:
            self._report_internal_error('reset_scores')
            response.success, response.message = False, 'internal error (see the node log)'
        return response

    # -- output --------------------------------------------------------------------------------

    def _publish_answer(self, record: Record) -> None:
        if self._ask_action is not None:
            self._ask_action.deliver(record)
        if not self.context.ok():
            return  # shutting down (Ctrl-C shuts the context down before the workers stop): nothing to publish to
        try:
            self._answers.publish(record_to_answer_msg(record, stamp_ns=self.get_clock().now().nanoseconds))
            if self._answers_json is not None:
                data = json.dumps(record.to_json_dict(), allow_nan=False, default=_json_default)
                self._answers_json.publish(String(data=data))
        except Exception:
            if self.context.ok():
                raise  # a real failure; the engine logs it and keeps going

    def _publish_diagnostics(self) -> None:
        try:
            self._diagnostics.publish(self._diagnostic_array())
        except Exception as error:  # diagnostics must never take the node down
            self.get_logger().error(f'could not publish diagnostics: {error!r}', throttle_duration_sec=10.0)

    def _diagnostic_array(self) -> DiagnosticArray:
        """This period's ``/diagnostics`` (:class:`~actial_ros.nodes.reasoner_diagnostics.ReasonerDiagnostics`),
        stamped with the node's clock; drops new since the last one are logged."""
        rendered = dict(self._visuals.published) if self._visuals is not None else {}
        report = self._report
        if report is not None:
            rendered.update(report_pairs=report.pairs_held, report_bytes=report.bytes_held)
        cameras = [
            CameraReport(
                camera_id=camera.camera_id,
                image_topic=camera.image_topic,
                received=self._received[camera.camera_id],
                has_camera_info=self._intrinsics[camera.camera_id] is not None,
                dds_lost=self._dds_lost.get(camera.camera_id, 0),
            )
            for camera in self._cameras
        ]
        array, new_drops = self._diagnostics_builder.array(
            engine=self.engine, backend=self.backend, cameras=cameras, rendered=rendered, warnings=self._warnings
        )
        if new_drops:
            self.get_logger().warning(f'dropped since last report: {new_drops}')
        array.header.stamp = self.get_clock().now().to_msg()
        return array

    def destroy_node(self) -> None:
        """Stop the engine's threads, close the backend, then destroy the node."""
        self._release()
        super().destroy_node()


def _json_default(value: Any) -> Any:
    if hasattr(value, 'item'):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f'not JSON serialisable: {type(value).__name__}')


def main(args: Sequence[str] | None = None) -> int:
    """Entry point: ``spatial_reasoner --ros-args --params-file config/spatial_reasoner.yaml``."""
    return run_node(SpatialReasonerNode, name='spatial_reasoner', args=args)


if __name__ == '__main__':
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    sys.exit(main())

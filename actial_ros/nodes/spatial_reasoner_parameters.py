"""The parameters of the ``spatial_reasoner`` node (ROS-free): the table (:data:`PARAMETERS`, the one source
of ``config/spatial_reasoner.yaml`` and of the README's parameter table), their values typed once
(:class:`SpatialReasonerSettings`, one field per parameter) and their translation into the engine's
configuration (:meth:`SpatialReasonerSettings.reasoner_config`) and the backend
(:meth:`SpatialReasonerSettings.create_backend`).

Defaults that are the core's come from its dataclasses (``_core``: the rule's own home); the node's own are
the topics, QoS, backend options, and ``min_pair_interval_s`` (0.5 s here: a question-rate bound for a live
robot; the core pairs every frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actial_ros.backends import create_backend
from actial_ros.backends.base import Backend
from actial_ros.backends.defaults import DEFAULT_API_KEY_ENV, DEFAULT_BASE_URL, DEFAULT_MODEL
from actial_ros.enums import IMAGE_TRANSPORTS, QOS_CHOICES, QOS_NAMES
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, LabelThresholds
from actial_ros.pairing import BufferLimits, OdometryMatchPolicy, PairPolicy, PairStrategy
from actial_ros.parameter_spec import ParameterSpec
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT, parse_question_types
from actial_ros.reasoner import ReasonerConfig

__all__ = ['PARAMETERS', 'SpatialReasonerSettings']

_MB = 1024 * 1024


def _core(cls: Any, field: str) -> Any:
    """The default of a core dataclass field: the node's default comes from where the rule lives."""
    return cls.__dataclass_fields__[field].default


# Every parameter, its default and its meaning. config/spatial_reasoner.yaml mirrors this list. Defaults
# that are the core's come from its dataclasses (_core); the node's own: topics, QoS, backend options, and
# min_pair_interval_s (0.5 s here: a question rate bound for a live robot; the core pairs every frame).

PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        'image_topic', '/camera/image_raw', 'Image topic (Image, or CompressedImage when compressed).', read_only=True
    ),
    ParameterSpec(
        'image_transport',
        'raw',
        "'raw' (sensor_msgs/Image) or 'compressed' (CompressedImage).",
        read_only=True,
        choices=IMAGE_TRANSPORTS,
    ),
    ParameterSpec('camera_info_topic', '/camera/camera_info', 'sensor_msgs/CameraInfo topic.', read_only=True),
    ParameterSpec('odometry_topic', '/odom', 'nav_msgs/Odometry topic (T_odom_base).', read_only=True),
    ParameterSpec('camera_id', 'camera', 'Name of the camera in answers and diagnostics.', read_only=True),
    ParameterSpec('image_qos', 'sensor_data', f'{QOS_CHOICES}.', read_only=True, choices=QOS_NAMES),
    ParameterSpec('odometry_qos', 'reliable', f'{QOS_CHOICES}.', read_only=True, choices=QOS_NAMES),
    ParameterSpec('qos_depth', 10, 'Subscription queue depth.', read_only=True, low=1, high=1000),
    ParameterSpec('extrinsic_translation', [0.0, 0.0, 0.0], 'T_base_camera_optical translation (m), base_link frame.'),
    ParameterSpec(
        'extrinsic_rotation_xyzw',
        list(BASE_TO_OPTICAL_QUATERNION_XYZW),
        'T_base_camera_optical rotation quaternion (x, y, z, w); default: forward-looking camera.',
    ),
    ParameterSpec('require_camera_info', False, 'Drop images that arrive before any CameraInfo.'),
    ParameterSpec(
        'camera_info_size_policy',
        _core(ReasonerConfig, 'camera_info_size_policy'),
        "Images whose size differs from their CameraInfo: 'rescale' the intrinsics when the aspect ratios agree "
        "within 1 % (else drop), or 'refuse' (drop); drops count as camera_info_size_mismatch.",
    ),
    ParameterSpec(
        'extrinsics_from_tf',
        False,
        'Take each camera extrinsic from the tf tree (base_frame -> image header frame_id) instead of the '
        'extrinsic parameters; needs tf2_ros (a ROS install). Images wait (dropped as no_extrinsic) until found.',
        read_only=True,
    ),
    ParameterSpec('base_frame', 'base_link', 'Robot base frame for tf lookups (extrinsics_from_tf).', read_only=True),
    ParameterSpec(
        'translation_threshold_m',
        _core(LabelThresholds, 'translation_m'),
        "Below this |t12.x| (m) the translation truth is 'none'.",
        low=0.0,
        high=10.0,
    ),
    ParameterSpec(
        'yaw_threshold_deg',
        _core(LabelThresholds, 'yaw_deg'),
        "Below this |yaw| (deg) the rotation truth is 'none'.",
        low=0.0,
        high=90.0,
    ),
    ParameterSpec(
        'min_yaw_deg',
        _core(PairPolicy, 'min_yaw_deg'),
        'Smallest |yaw| of a pair (deg; paper: 20).',
        low=0.0,
        high=180.0,
    ),
    ParameterSpec(
        'max_yaw_deg',
        _core(PairPolicy, 'max_yaw_deg'),
        'Largest |yaw| of a pair (deg; paper: 100).',
        low=0.0,
        high=180.0,
    ),
    ParameterSpec(
        'min_pair_interval_s',
        0.5,
        'Stamp time between two pairs of a camera (s); bounds the question rate.',
        low=0.0,
        high=3600.0,
    ),
    ParameterSpec(
        'max_pair_span_s',
        _core(PairPolicy, 'max_pair_span_s'),
        'Largest stamp difference within a pair (s).',
        low=0.001,
        high=86400.0,
    ),
    ParameterSpec(
        'max_frame_uses',
        _core(PairPolicy, 'max_frame_uses'),
        'A frame takes part in at most this many pairs.',
        low=1,
        high=1000,
    ),
    ParameterSpec(
        'cross_camera_pairs',
        _core(PairPolicy, 'cross_camera'),
        'Also pair frames of different cameras (several cameras only).',
    ),
    ParameterSpec('pair_strategy', 'random', "'random', 'newest' or 'widest' among qualifying frames."),
    ParameterSpec(
        'seed', _core(PairPolicy, 'seed'), 'Seed of pair selection and option shuffling.', low=0, high=2**31 - 1
    ),
    ParameterSpec(
        'max_buffer_frames',
        _core(BufferLimits, 'max_frames'),
        'Posed frames kept per camera.',
        read_only=True,
        low=2,
        high=100000,
    ),
    ParameterSpec('max_buffer_mb', 256.0, 'Image megabytes kept per camera.', read_only=True, low=1.0, high=65536.0),
    ParameterSpec(
        'max_pending_frames',
        _core(BufferLimits, 'max_pending'),
        'Images waiting for odometry per camera.',
        read_only=True,
        low=1,
        high=10000,
    ),
    ParameterSpec(
        'odometry_max_interpolation_gap_s',
        _core(OdometryMatchPolicy, 'max_interpolation_gap_s'),
        'Largest gap between odometry samples interpolated over (s).',
        low=0.0,
        high=60.0,
    ),
    ParameterSpec(
        'odometry_max_extrapolation_s',
        _core(OdometryMatchPolicy, 'max_extrapolation_s'),
        'Largest distance to an odometry sample held without a bracket (s).',
        low=0.0,
        high=10.0,
    ),
    ParameterSpec(
        'odometry_pending_timeout_s',
        _core(OdometryMatchPolicy, 'pending_timeout_s'),
        'How long an image waits for later odometry (s, stamp time).',
        low=0.0,
        high=600.0,
    ),
    ParameterSpec(
        'time_reset_s',
        _core(OdometryMatchPolicy, 'time_reset_s'),
        'A stamp further than this from its stream (back or ahead) is a suspect: a confirmed jump back clears '
        'the buffers, an isolated one is dropped as time_outlier (s; exceed the slowest stream period).',
        low=0.0,
        high=3600.0,
    ),
    ParameterSpec(
        'time_jump_confirmations',
        _core(OdometryMatchPolicy, 'time_jump_confirmations'),
        'Consecutive agreeing suspect stamps that confirm a time jump (1: reset on the first).',
        low=1,
        high=100,
    ),
    ParameterSpec(
        'question_types', ['ego_translation', 'object_translation', 'rotation'], 'Viewpoint questions asked per pair.'
    ),
    ParameterSpec(
        'backend',
        'geometry',
        "'vllm' (OpenAI-compatible server), 'transformers' (model in this process) or 'geometry' (no model).",
        read_only=True,
    ),
    ParameterSpec(
        'vllm_base_url',
        DEFAULT_BASE_URL,
        'OpenAI-compatible base URL of the vLLM server; several, comma-separated: load spread, failover.',
        read_only=True,
    ),
    ParameterSpec('vllm_model', DEFAULT_MODEL, 'Served model name.', read_only=True),
    ParameterSpec(
        'vllm_api_key_env',
        DEFAULT_API_KEY_ENV,
        'Environment variable holding the API key (never logged).',
        read_only=True,
    ),
    ParameterSpec('vllm_timeout_s', 30.0, 'Timeout of one HTTP attempt (s).', read_only=True, low=0.1, high=3600.0),
    ParameterSpec(
        'vllm_max_retries', 2, 'Retries after a failed request (with backoff).', read_only=True, low=0, high=20
    ),
    ParameterSpec(
        'vllm_probe_interval_s',
        5.0,
        'Health probe of each vLLM endpoint (GET /v1/models) at start and then this often (s); 0: none.',
        read_only=True,
        low=0.0,
        high=3600.0,
    ),
    ParameterSpec(
        'transformers_model', '', 'transformers backend: Qwen2.5-VL checkpoint directory or hub id.', read_only=True
    ),
    ParameterSpec(
        'transformers_device',
        'auto',
        "transformers backend: 'auto' (cuda if present), 'cpu', 'cuda:N'.",
        read_only=True,
    ),
    ParameterSpec(
        'transformers_dtype',
        'auto',
        "transformers backend: 'auto', 'bfloat16', 'float16' or 'float32'.",
        read_only=True,
    ),
    ParameterSpec(
        'system_prompt',
        '',
        'System prompt sent to the model; empty: the package default (transformers backend: the one the checkpoint '
        'was trained with, from its actial_recipe.json, else the package default).',
        read_only=True,
    ),
    ParameterSpec('max_tokens', 1024, 'Largest completion length (tokens).', read_only=True, low=1, high=65536),
    ParameterSpec(
        'top_p',
        1.0,
        'Nucleus sampling p (temperature is 0; the paper evaluated with 0.95).',
        read_only=True,
        low=0.01,
        high=1.0,
    ),
    ParameterSpec('jpeg_quality', 90, 'JPEG quality of images sent to the model.', read_only=True, low=1, high=100),
    ParameterSpec(
        'geometry_min_inliers',
        30,
        'Geometry backend: abstain below this many pose inliers.',
        read_only=True,
        low=5,
        high=100000,
    ),
    ParameterSpec(
        'max_in_flight',
        _core(ReasonerConfig, 'max_in_flight'),
        'Backend requests running at once.',
        read_only=True,
        low=1,
        high=256,
    ),
    ParameterSpec(
        'max_queue',
        _core(ReasonerConfig, 'max_queue'),
        'Questions waiting for a worker; the oldest is dropped beyond it.',
        low=1,
        high=100000,
    ),
    ParameterSpec(
        'max_request_age_s',
        _core(ReasonerConfig, 'max_request_age_s'),
        'Questions older than this when a worker is free are dropped (s).',
        low=0.01,
        high=86400.0,
    ),
    ParameterSpec('diagnostics_period_s', 1.0, 'Period of /diagnostics (s).', read_only=True, low=0.05, high=3600.0),
    ParameterSpec(
        'autostart',
        True,
        'Configure and activate at start-up (false: wait in unconfigured for lifecycle transitions).',
        read_only=True,
    ),
    ParameterSpec(
        'require_model_server',
        False,
        'configure fails when the backend probe fails (the model server unreachable or not serving the '
        'model); false: configure succeeds DEGRADED and answers are errors until the server is back.',
        read_only=True,
    ),
    ParameterSpec(
        'json_interface',
        False,
        'Also publish every answer as a JSON record on ~/answers_json and accept JSON questions on ~/ask_json '
        '(for consumers without the actial_ros_msgs types).',
        read_only=True,
    ),
    ParameterSpec(
        'report_path',
        '',
        'Write an HTML report of the latest answered pairs (both frames as thumbnails, answers, truth, cameras '
        "from above) to this file when the node cleans up or stops; '' writes none (actial_ros.live_report).",
        read_only=True,
    ),
    ParameterSpec(
        'report_max_pairs',
        200,
        'Pairs the report keeps (the oldest dropped beyond it); each holds two JPEG thumbnails of at most '
        '320x240 pixels, about 5-25 kB each.',
        read_only=True,
        low=1,
        high=100000,
    ),
)


def _typed(spec: ParameterSpec, value: Any) -> Any:
    """``value`` as the type of ``spec``'s default (a list as a tuple of its first element's type)."""
    default = spec.default
    if isinstance(default, list):
        return tuple(type(default[0])(item) for item in value)
    return type(default)(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpatialReasonerSettings:
    """The node's parameter values, typed once (:meth:`from_values`); one field per entry of
    :data:`PARAMETERS`, of the same name, whose type is its default's (lists as tuples). Meanings, units and
    defaults are the table's (the one declaration; test/test_config.py checks that the two agree)."""

    image_topic: str
    image_transport: str
    camera_info_topic: str
    odometry_topic: str
    camera_id: str
    image_qos: str
    odometry_qos: str
    qos_depth: int
    extrinsic_translation: tuple[float, ...]
    extrinsic_rotation_xyzw: tuple[float, ...]
    require_camera_info: bool
    camera_info_size_policy: str
    extrinsics_from_tf: bool
    base_frame: str
    translation_threshold_m: float
    yaw_threshold_deg: float
    min_yaw_deg: float
    max_yaw_deg: float
    min_pair_interval_s: float
    max_pair_span_s: float
    max_frame_uses: int
    cross_camera_pairs: bool
    pair_strategy: str
    seed: int
    max_buffer_frames: int
    max_buffer_mb: float
    max_pending_frames: int
    odometry_max_interpolation_gap_s: float
    odometry_max_extrapolation_s: float
    odometry_pending_timeout_s: float
    time_reset_s: float
    time_jump_confirmations: int
    question_types: tuple[str, ...]
    backend: str
    vllm_base_url: str
    vllm_model: str
    vllm_api_key_env: str
    vllm_timeout_s: float
    vllm_max_retries: int
    vllm_probe_interval_s: float
    transformers_model: str
    transformers_device: str
    transformers_dtype: str
    system_prompt: str
    max_tokens: int
    top_p: float
    jpeg_quality: int
    geometry_min_inliers: int
    max_in_flight: int
    max_queue: int
    max_request_age_s: float
    diagnostics_period_s: float
    autostart: bool
    require_model_server: bool
    json_interface: bool
    report_path: str
    report_max_pairs: int

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SpatialReasonerSettings:
        """The settings of parameter values (name -> value, every name of :data:`PARAMETERS`), each cast to
        its default's type."""
        return cls(**{spec.name: _typed(spec, values[spec.name]) for spec in PARAMETERS})

    def reasoner_config(self) -> ReasonerConfig:
        """The engine's configuration.

        Raises:
            ConfigError: an invalid value or combination (e.g. ``min_yaw_deg > max_yaw_deg``).
        """
        try:
            strategy = PairStrategy(self.pair_strategy)
        except ValueError:
            raise ConfigError(f'pair_strategy must be one of {[s.value for s in PairStrategy]}') from None
        try:
            return ReasonerConfig(
                question_types=parse_question_types(list(self.question_types)),
                thresholds=LabelThresholds(translation_m=self.translation_threshold_m, yaw_deg=self.yaw_threshold_deg),
                pair_policy=PairPolicy(
                    min_yaw_deg=self.min_yaw_deg,
                    max_yaw_deg=self.max_yaw_deg,
                    min_pair_interval_s=self.min_pair_interval_s,
                    max_pair_span_s=self.max_pair_span_s,
                    max_frame_uses=self.max_frame_uses,
                    strategy=strategy,
                    seed=self.seed,
                    cross_camera=self.cross_camera_pairs,
                ),
                match_policy=OdometryMatchPolicy(
                    max_interpolation_gap_s=self.odometry_max_interpolation_gap_s,
                    max_extrapolation_s=self.odometry_max_extrapolation_s,
                    pending_timeout_s=self.odometry_pending_timeout_s,
                    time_reset_s=self.time_reset_s,
                    time_jump_confirmations=self.time_jump_confirmations,
                ),
                limits=BufferLimits(
                    max_frames=self.max_buffer_frames,
                    max_bytes=int(self.max_buffer_mb * _MB),
                    max_pending=self.max_pending_frames,
                ),
                max_in_flight=self.max_in_flight,
                max_queue=self.max_queue,
                max_request_age_s=self.max_request_age_s,
                seed=self.seed,
                camera_info_size_policy=self.camera_info_size_policy,
            )
        except ActialError as error:
            raise ConfigError(str(error)) from error

    def create_backend(self) -> Backend:
        """Create the backend named by the ``backend`` parameter.

        Raises:
            ConfigError: unknown backend or invalid options.
        """
        name = self.backend
        if name == 'vllm':
            return create_backend(
                'vllm',
                base_url=self.vllm_base_url,
                model=self.vllm_model,
                api_key_env=self.vllm_api_key_env,
                timeout_s=self.vllm_timeout_s,
                max_retries=self.vllm_max_retries,
                max_in_flight=self.max_in_flight,
                system_prompt=self.system_prompt or DEFAULT_SYSTEM_PROMPT,
                max_tokens=self.max_tokens,
                top_p=self.top_p,
                jpeg_quality=self.jpeg_quality,
                probe_interval_s=self.vllm_probe_interval_s,
            )
        if name == 'transformers':
            if not self.transformers_model.strip():
                raise ConfigError('backend transformers needs the transformers_model parameter (checkpoint or hub id)')
            try:
                return create_backend(
                    'transformers',
                    model=self.transformers_model,
                    device=self.transformers_device,
                    dtype=self.transformers_dtype,
                    system_prompt=self.system_prompt or None,  # None: the checkpoint's recipe
                    max_tokens=self.max_tokens,
                )
            except ConfigError:
                raise
            except ActialError as error:  # the checkpoint could not be loaded
                raise ConfigError(str(error)) from error
        if name == 'geometry':
            return create_backend('geometry', min_inliers=self.geometry_min_inliers)
        return create_backend(name)

"""The sim rig's parameters as plain data (no ROS): names, defaults, meanings and ranges, and the
:class:`~actial_ros.simulation.rig.RigConfig` they describe.

The rclpy node (:mod:`actial_ros.nodes.sim_rig`) declares exactly these parameters; ``actial-ros sim
--bag`` builds the same configuration without ROS. Extrinsic parameter names and meaning are those of
the ``spatial_reasoner`` node, so both get the same ``T_base_camera_optical``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from actial_ros.enums import QOS_CHOICES, QOS_NAMES
from actial_ros.errors import ActialError, ConfigError
from actial_ros.geometry import BASE_TO_OPTICAL_QUATERNION_XYZW, base_to_optical_extrinsic
from actial_ros.parameter_spec import ParameterSpec, check_choices
from actial_ros.simulation.camera import PinholeCamera
from actial_ros.simulation.render import RenderOptions
from actial_ros.simulation.rig import RigConfig
from actial_ros.simulation.scene import DEFAULT_OBJECTS, SceneConfig
from actial_ros.simulation.timing import SimTiming
from actial_ros.simulation.trajectory import TRAJECTORY_KINDS, Trajectory, make_trajectory

__all__ = ['ON_END_CHOICES', 'RIG_PARAMETERS', 'default_values', 'rig_config_from_values']

ON_END_CHOICES = ('hold', 'exit')
"""After a finite run: ``hold`` keeps publishing the clock and odometry (the base stands still, no more
images) until shut down; ``exit`` ends the node."""


RIG_PARAMETERS: tuple[ParameterSpec, ...] = (
    # topics and frames
    ParameterSpec('image_topic', '/camera/image_raw', 'sensor_msgs/Image (rgb8) topic.'),
    ParameterSpec('camera_info_topic', '/camera/camera_info', 'sensor_msgs/CameraInfo topic.'),
    ParameterSpec(
        'depth_topic', '/camera/depth/image_raw', 'sensor_msgs/Image (32FC1, metres) topic when depth is on.'
    ),
    ParameterSpec('odometry_topic', '/odom', 'nav_msgs/Odometry topic (T_odom_base, exact).'),
    ParameterSpec(
        'camera_pose_topic', '~/camera_pose', 'geometry_msgs/PoseStamped ground truth T_odom_camera_optical.'
    ),
    ParameterSpec('odom_frame', 'odom', 'Odometry header.frame_id (the simulation world).'),
    ParameterSpec('base_frame', 'base_link', 'Odometry child_frame_id.'),
    ParameterSpec('camera_frame', 'camera_optical_frame', 'Image and CameraInfo header.frame_id.'),
    ParameterSpec(
        'image_qos',
        'reliable',
        f'{QOS_CHOICES} for images and camera_info.',
        choices=QOS_NAMES,
    ),
    ParameterSpec('qos_depth', 10, 'Publisher queue depth.', 1, 1000),
    ParameterSpec('publish_clock', True, 'Publish rosgraph_msgs/Clock on /clock every step (simulated time).'),
    # camera
    ParameterSpec('width', 320, 'Image width (pixels).', 8, 4096),
    ParameterSpec('height', 240, 'Image height (pixels).', 8, 4096),
    ParameterSpec(
        'fov_v_deg', 60.0, 'Vertical field of view (deg); fx = fy = (H/2)/tan(fov/2), cx = W/2, cy = H/2.', 1.0, 170.0
    ),
    ParameterSpec('near_m', 0.05, 'Near clipping plane (m).', 1e-4, 100.0),
    ParameterSpec('far_m', 50.0, 'Far clipping plane (m).', 0.01, 100000.0),
    ParameterSpec('depth', False, 'Also render and publish depth (32FC1).'),
    # rendering
    ParameterSpec('light_direction', [0.6, 0.4, 1.0], 'Direction towards the light, world frame (x, y, z).'),
    ParameterSpec('light_color', [1.0, 1.0, 1.0], 'Light colour (r, g, b in [0, 1]).'),
    ParameterSpec('shadows', False, 'Cast shadows (about a third more render time).'),
    ParameterSpec('ambient', 0.6, 'Ambient lighting coefficient.', 0.0, 10.0),
    ParameterSpec('diffuse', 0.35, 'Diffuse lighting coefficient.', 0.0, 10.0),
    ParameterSpec('specular', 0.05, 'Specular lighting coefficient.', 0.0, 10.0),
    ParameterSpec(
        'noise_std', 0.0, 'Gaussian pixel noise, standard deviation in 8-bit intensity units (seeded).', 0.0, 255.0
    ),
    # scene
    ParameterSpec(
        'objects',
        list(DEFAULT_OBJECTS),
        "Object specs 'PATH[;size=m][;scale=s][;x=m][;y=m][;z=m][;yaw=deg][;texture=noise|IMAGE]'; "
        'PATH is a .urdf/.obj file or relative to pybullet_data.',
    ),
    ParameterSpec('floor', 'noise', "'noise' (seeded texture), 'checker' (pybullet plane.urdf), 'none', or an image."),
    ParameterSpec('floor_size_m', 12.0, 'Side of the textured floor (m).', 0.1, 1000.0),
    ParameterSpec(
        'backdrop',
        'none',
        "'none', 'panorama' (distant walls whose hue follows azimuth), 'noise' (a seeded wall, no colour map "
        'shared between seeds) or a panorama image.',
    ),
    ParameterSpec('backdrop_yaw_deg', 0.0, 'Backdrop turned by this angle about +z (deg).', -3600.0, 3600.0),
    ParameterSpec(
        'backdrop_mirrored', False, "Backdrop image mirrored left-right (a control of the wall's colour map)."
    ),
    ParameterSpec('backdrop_radius_m', 5.5, 'Radius of the backdrop cylinder around the origin (m).', 0.1, 1000.0),
    ParameterSpec('backdrop_height_m', 4.0, 'Height of the backdrop above the floor (m).', 0.01, 1000.0),
    ParameterSpec('object_size_m', 0.35, 'Default largest extent of an object (m).', 0.001, 100.0),
    ParameterSpec(
        'placement_radius_m', 0.6, 'Objects without x/y are placed within this radius of the origin (m).', 0.0, 1000.0
    ),
    ParameterSpec('min_separation_m', 0.35, 'Smallest distance between placed objects (m).', 0.0, 1000.0),
    ParameterSpec('seed', 0, 'Seed of placement, textures, random walk and camera noise.', 0, 2**31 - 1),
    # trajectory
    ParameterSpec('trajectory', 'orbit', f'One of {", ".join(repr(k) for k in TRAJECTORY_KINDS)}.'),
    ParameterSpec('target', [0.0, 0.0], 'Orbit/arc/random-walk centre, world (x, y) (m).'),
    ParameterSpec('radius_m', 1.5, 'Orbit and arc radius (m).', 0.01, 1000.0),
    ParameterSpec('height_m', 0.3, 'Height of base_link above the floor for orbit, arc and drive (m).', -100.0, 1000.0),
    ParameterSpec(
        'speed_deg_s', 30.0, 'Orbit/arc angular speed (deg/s; orbit: positive counter-clockwise).', -3600.0, 3600.0
    ),
    ParameterSpec('start_deg', 0.0, 'Orbit/arc start azimuth around the target (deg).', -3600.0, 3600.0),
    ParameterSpec('end_deg', 120.0, 'Arc end azimuth (deg); the arc sweeps back and forth.', -3600.0, 3600.0),
    ParameterSpec('radius_range_m', [1.2, 2.0], 'Random walk: radius range (m).'),
    ParameterSpec('height_range_m', [0.25, 0.45], 'Random walk: base height range (m).'),
    ParameterSpec(
        'step_deg', 35.0, 'Random walk: standard deviation of the azimuth step per waypoint (deg).', 0.0, 360.0
    ),
    ParameterSpec('waypoint_interval_s', 1.5, 'Random walk: time between waypoints (s).', 0.01, 3600.0),
    ParameterSpec('drive_start', [-1.0, -1.0], 'Drive: start position, world (x, y) (m).'),
    ParameterSpec('drive_start_yaw_deg', 0.0, 'Drive: start heading (deg, about +z).', -3600.0, 3600.0),
    ParameterSpec(
        'drive_segments',
        [4.0, 0.5, 0.0, 3.0, 0.3, 30.0, 4.0, 0.5, 0.0],
        'Drive: (duration s, linear m/s, angular deg/s) triples, flattened.',
    ),
    ParameterSpec(
        'duration_s', 0.0, "Simulated seconds of motion; 0: the trajectory's own (endless for an orbit).", 0.0, 1e7
    ),
    # extrinsic (same names as spatial_reasoner)
    ParameterSpec('extrinsic_translation', [0.0, 0.0, 0.0], 'T_base_camera_optical translation (m), base_link frame.'),
    ParameterSpec(
        'extrinsic_rotation_xyzw',
        list(BASE_TO_OPTICAL_QUATERNION_XYZW),
        'T_base_camera_optical rotation quaternion (x, y, z, w); default: forward-looking camera.',
    ),
    # time
    ParameterSpec('step_rate_hz', 100.0, 'Simulation steps (and /clock messages) per simulated second.', 0.001, 1e6),
    ParameterSpec('camera_rate_hz', 10.0, 'Camera frames per simulated second (divides step_rate_hz).', 0.001, 1e6),
    ParameterSpec(
        'odometry_rate_hz',
        50.0,
        'Odometry per simulated second (divides step_rate_hz); also at every frame.',
        0.001,
        1e6,
    ),
    ParameterSpec('start_time_s', 0.0, 'Simulated time of the first step (s).', 0.0, 1e9),
    ParameterSpec('real_time_factor', 1.0, 'Simulated seconds per wall second; 0: as fast as possible.', 0.0, 1e6),
    # run control
    ParameterSpec('wait_for_subscribers_s', 10.0, 'Wait up to this long (wall) for an image subscriber (s).', 0.0, 1e6),
    ParameterSpec('settle_s', 1.0, 'Extra wall time after a subscriber appears, for matching (s).', 0.0, 3600.0),
    ParameterSpec(
        'on_end',
        'hold',
        "After a finite run: 'hold' (clock and odometry go on, no images) or 'exit'.",
        choices=ON_END_CHOICES,
    ),
    ParameterSpec('record', '', 'If set, write the ground-truth pose record (JSON lines) to this path.'),
)
"""Every parameter of the sim rig node, in declaration order."""


def default_values() -> dict[str, Any]:
    """Parameter name -> default value."""
    return {p.name: p.default for p in RIG_PARAMETERS}


def _floats(values: Mapping[str, Any], name: str, count: int) -> list[float]:
    try:
        items = [float(v) for v in values[name]]
    except (TypeError, ValueError):
        raise ConfigError(f'{name} must be a list of numbers, got {values[name]!r}') from None
    if len(items) != count or not all(math.isfinite(v) for v in items):
        raise ConfigError(f'{name} needs {count} finite numbers, got {items}')
    return items


def _check_ranges(values: Mapping[str, Any]) -> None:
    for param in RIG_PARAMETERS:
        if param.low is None or param.high is None:
            continue
        value = values[param.name]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f'{param.name} must be a number, got {value!r}') from None
        if not param.low <= number <= param.high:
            raise ConfigError(f'{param.name} = {value} is outside [{param.low:g}, {param.high:g}]')


def _trajectory(values: Mapping[str, Any]) -> Trajectory:
    kind = str(values['trajectory'])
    if kind in ('orbit', 'arc'):
        options: dict[str, Any] = {
            'target': _floats(values, 'target', 2),
            'radius_m': float(values['radius_m']),
            'height_m': float(values['height_m']),
            'speed_deg_s': float(values['speed_deg_s']),
            'start_deg': float(values['start_deg']),
        }
        if kind == 'arc':
            options['end_deg'] = float(values['end_deg'])
            options['speed_deg_s'] = abs(options['speed_deg_s'])
    elif kind == 'random_walk':
        options = {
            'target': _floats(values, 'target', 2),
            'radius_range_m': _floats(values, 'radius_range_m', 2),
            'height_range_m': _floats(values, 'height_range_m', 2),
            'step_deg': float(values['step_deg']),
            'waypoint_interval_s': float(values['waypoint_interval_s']),
            'seed': int(values['seed']),
        }
    elif kind == 'drive':
        segments = [float(v) for v in values['drive_segments']]
        options = {
            'start': _floats(values, 'drive_start', 2),
            'start_yaw_deg': float(values['drive_start_yaw_deg']),
            'height_m': float(values['height_m']),
            'segments': segments,
        }
    else:
        raise ConfigError(f'trajectory must be one of {TRAJECTORY_KINDS}, got {kind!r}')
    return make_trajectory(kind, options)


def rig_config_from_values(values: Mapping[str, Any]) -> RigConfig:
    """Build the :class:`RigConfig` described by parameter values (missing names take their defaults).

    Raises:
        ConfigError: an unknown name, a value outside its range, or an invalid combination (e.g. a camera
            rate that does not divide the step rate, ``near_m >= far_m``, a bad extrinsic).
    """
    unknown = set(values) - {p.name for p in RIG_PARAMETERS} - {'use_sim_time'}
    if unknown:
        raise ConfigError(f'unknown sim rig parameters: {sorted(unknown)}')
    merged = {**default_values(), **values}
    _check_ranges(merged)
    check_choices(RIG_PARAMETERS, merged)
    try:
        extrinsic = base_to_optical_extrinsic(
            _floats(merged, 'extrinsic_translation', 3), _floats(merged, 'extrinsic_rotation_xyzw', 4)
        )
        seed = int(merged['seed'])
        return RigConfig(
            camera=PinholeCamera(
                width=int(merged['width']),
                height=int(merged['height']),
                fov_v_deg=float(merged['fov_v_deg']),
                near_m=float(merged['near_m']),
                far_m=float(merged['far_m']),
            ),
            render=RenderOptions(
                light_direction=_triple(_floats(merged, 'light_direction', 3)),
                light_color=_triple(_floats(merged, 'light_color', 3)),
                shadows=bool(merged['shadows']),
                ambient=float(merged['ambient']),
                diffuse=float(merged['diffuse']),
                specular=float(merged['specular']),
                noise_std=float(merged['noise_std']),
                noise_seed=seed,
                depth=bool(merged['depth']),
            ),
            scene=SceneConfig(
                objects=tuple(str(o) for o in merged['objects']),
                floor=str(merged['floor']),
                floor_size_m=float(merged['floor_size_m']),
                backdrop=str(merged['backdrop']),
                backdrop_radius_m=float(merged['backdrop_radius_m']),
                backdrop_height_m=float(merged['backdrop_height_m']),
                backdrop_yaw_deg=float(merged['backdrop_yaw_deg']),
                backdrop_mirrored=bool(merged['backdrop_mirrored']),
                object_size_m=float(merged['object_size_m']),
                placement_radius_m=float(merged['placement_radius_m']),
                min_separation_m=float(merged['min_separation_m']),
                seed=seed,
            ),
            trajectory=_trajectory(merged),
            extrinsic=extrinsic,
            timing=SimTiming(
                step_rate_hz=float(merged['step_rate_hz']),
                camera_rate_hz=float(merged['camera_rate_hz']),
                odometry_rate_hz=float(merged['odometry_rate_hz']),
                start_ns=round(float(merged['start_time_s']) * 1e9),
            ),
            duration_s=float(merged['duration_s']),
        )
    except ConfigError:
        raise
    except ActialError as error:
        raise ConfigError(str(error)) from error


def _triple(values: list[float]) -> tuple[float, float, float]:
    return values[0], values[1], values[2]

"""Benchmark of the pybullet simulation (run by hand; prints figures).

    .venv/bin/python benchmarks/sim_render.py [--frames 60] [--repeats 3] [--seconds 12] [--skip-ros]

Measures:
1. rendered frames per second (TinyRenderer, DIRECT, CPU) at 320x240 and 640x480, for the default
   scene on an orbit (camera pitched 45 degrees: the textured floor fills the image): the renderer alone,
   then the whole rig step (trajectory, rendering, ground truth); variants: shadows, depth, pixel noise,
   pybullet's checker floor, no floor (objects only: the cost follows the textured pixels drawn);
2. end to end over real DDS (loopback, 16 MB Fast DDS shared-memory profile): the ``sim_rig`` node
   running as fast as possible (``real_time_factor:=0``) with the ``spatial_reasoner`` node attached
   (geometry backend, ``use_sim_time:=true``, reliable images): simulated seconds per wall second,
   measured on ``/clock`` from the first step to the last, and whether every frame was posed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from actial_ros.dds import local_ros_environment
from actial_ros.geometry import camera_pose_from_odometry
from actial_ros.simulation.camera import PinholeCamera
from actial_ros.simulation.mount import camera_mount, mount_parameters
from actial_ros.simulation.render import RenderOptions
from actial_ros.simulation.rig import RigConfig, SimRig
from actial_ros.simulation.scene import SceneConfig
from actial_ros.simulation.timing import SimTiming
from actial_ros.simulation.trajectory import OrbitTrajectory

PITCH_DEG = 45.0


def render_rates(frames: int, repeats: int) -> None:
    print(f'1. rendering, default scene (5 objects, floor), orbit, {frames} frames, best of {repeats}')
    print(f'   {"size":>9} {"variant":<10} {"renderer only":>16} {"rig step":>12}')
    for width, height in ((320, 240), (640, 480)):
        for variant, options, floor in (
            ('plain', RenderOptions(), 'noise'),
            ('shadows', RenderOptions(shadows=True), 'noise'),
            ('depth', RenderOptions(depth=True), 'noise'),
            ('noise 3', RenderOptions(noise_std=3.0), 'noise'),
            ('checker', RenderOptions(), 'checker'),
            ('no floor', RenderOptions(), 'none'),
        ):
            config = RigConfig(
                camera=PinholeCamera(width, height),
                render=options,
                scene=SceneConfig(floor=floor),
                trajectory=OrbitTrajectory(radius_m=1.5, height_m=1.2, speed_deg_s=30.0),
                extrinsic=camera_mount(pitch_down_deg=PITCH_DEG),
                timing=SimTiming(100.0, 10.0, 50.0),
            )
            with SimRig(config) as rig:
                rig.render(0)  # warm-up
                poses = [
                    camera_pose_from_odometry(rig.step(k * 10).t_world_base, config.extrinsic) for k in range(frames)
                ]
                renderer_only = rig_step = 0.0
                for _ in range(repeats):  # best of: the machine may be shared
                    started = time.perf_counter()
                    for index, pose in enumerate(poses):
                        rig.renderer.render(pose, index)
                    renderer_only = max(renderer_only, frames / (time.perf_counter() - started))
                    started = time.perf_counter()
                    for _ in itertools.islice(rig.frames(), frames):
                        pass
                    rig_step = max(rig_step, frames / (time.perf_counter() - started))
            print(f'   {width:>4}x{height:<4} {variant:<10} {renderer_only:>10.1f} fps {rig_step:>8.1f} fps')


def end_to_end(seconds: float, width: int, height: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix='actial_sim_bench_'))
    env = local_ros_environment(domain_id=180 + int(time.time()) % 40, profile_dir=workdir)
    os.environ.update(env)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock

    mount = mount_parameters(camera_mount(pitch_down_deg=PITCH_DEG))
    reasoner_params = {
        'backend': 'geometry',
        'use_sim_time': True,
        'image_qos': 'reliable',
        'qos_depth': 50,
        'diagnostics_period_s': 0.5,
        'max_frame_uses': 2,
        **mount,
    }
    reasoner_args = [sys.executable, '-m', 'actial_ros.nodes.spatial_reasoner', '--ros-args']
    for name, value in reasoner_params.items():
        reasoner_args += ['-p', f'{name}:={json.dumps(value)}']
    rig_params = {
        'width': width,
        'height': height,
        'duration_s': seconds,
        'camera_rate_hz': 10.0,
        'real_time_factor': 0.0,
        'on_end': 'hold',
        'radius_m': 1.5,
        'height_m': 1.2,
        'qos_depth': 50,
        'record': str(workdir / 'record.jsonl'),
        **mount,
    }
    rig_args = [sys.executable, '-m', 'actial_ros.nodes.sim_rig', '--ros-args']
    for name, value in rig_params.items():
        rig_args += ['-p', f'{name}:={json.dumps(value)}']
    rclpy.init()
    node = Node('sim_bench_clock')
    clock: list[tuple[float, int]] = []
    ingest: dict[str, str] = {}

    def on_clock(msg: Clock) -> None:
        clock.append((time.monotonic(), msg.clock.sec * 1_000_000_000 + msg.clock.nanosec))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'spatial_reasoner: ingest':
                ingest.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(Clock, '/clock', on_clock, 1000)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    reasoner = subprocess.Popen(reasoner_args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rig = None
    try:
        while node.count_publishers('/spatial_reasoner/answers') == 0:
            rclpy.spin_once(node, timeout_sec=0.1)
        rig = subprocess.Popen(rig_args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        end_ns = round(seconds * 1e9)
        deadline = time.monotonic() + 30 + 10 * seconds
        while not (clock and clock[-1][1] >= end_ns) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        frames = round(seconds * 10) + 1
        settle = time.monotonic() + 20
        while int(ingest.get('frames_posed', 0)) < frames and time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        for proc in (rig, reasoner):
            if proc is not None and proc.poll() is None:
                proc.send_signal(2)
                proc.wait(20)
        node.destroy_node()
        rclpy.try_shutdown()
    moving = [(wall, stamp) for wall, stamp in clock if 0 < stamp <= end_ns]
    first_wall, first_stamp = moving[0]
    last_wall, last_stamp = moving[-1]
    rate = (last_stamp - first_stamp) / 1e9 / (last_wall - first_wall)
    print(
        f'   {width}x{height}, camera 10 Hz, clock 100 Hz, odometry 50 Hz, {seconds:g} simulated s: '
        f'{rate:.2f} simulated s per wall s ({rate * 10:.1f} frames/s); frames posed by the reasoner '
        f'{ingest.get("frames_posed", "?")}/{frames}, pairs {ingest.get("pairs_made", "?")}'
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--seconds', type=float, default=12.0)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--skip-ros', action='store_true')
    args = parser.parse_args()
    render_rates(args.frames, args.repeats)
    if not args.skip_ros:
        print('2. end to end: sim_rig (as fast as possible) + spatial_reasoner (geometry, use_sim_time) over DDS')
        for width, height in ((320, 240), (640, 480)):
            end_to_end(args.seconds, width, height)
    return 0


if __name__ == '__main__':
    sys.exit(main())

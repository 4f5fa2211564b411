"""Soak benchmark of the spatial_reasoner node: is its memory bounded? (run by hand; prints figures).

    .venv/bin/python benchmarks/soak.py [--duration-s 600] [--fail-mode both] [--server-delay-s 2]

Starts the real node as its own process (``python -m actial_ros.nodes.spatial_reasoner``, ``backend:=vllm``)
against test/fake_openai_server.py, a FAKE OpenAI-compatible HTTP server (no model: it answers scripted
text; vLLM needs a GPU for real speed), and streams into it over DDS on loopback (own ``ROS_DOMAIN_ID``,
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, the 16 MB shared-memory Fast DDS profile) from this process:
``--cameras`` cameras (640x480 rgb8 Image with varying content plus CameraInfo) at ``--camera-rate-hz`` each,
and nav_msgs/Odometry at ``--odometry-rate-hz`` of a robot driving a circle (yaw rate ``--yaw-rate-deg-s``,
so that frames 20 to 100 degrees apart, within ``max_pair_span_s``, make pairs; the cameras are mounted
``--mount-spread-deg`` apart, so cross-camera pairs qualify too).

Server phases: the first half of the run it answers after ``--server-delay-s`` (slower than the node asks:
questions queue up and are dropped at ``max_queue`` or as stale); the second half it fails: HTTP 500 on every
chat request (``--fail-mode 500``), stopped so that connections are refused (``refused``), or 500 for the
first quarter of the run and refused for the last (``both``, the default).

Every ``--sample-s`` seconds it samples the node process's RSS (psutil), threads and open file descriptors,
and prints: RSS before streaming, at 60 s, median of the last half, max, growth per minute over the last half
(least squares) and per phase; the node's own counters from /diagnostics (images received, frames posed,
pairs, drops by reason, requests done / answered / errors) at the end of each phase; and the bound on image
data the buffer parameters promise (frame buffer: ``min(max_buffer_frames x image bytes, max_buffer_mb)`` per
camera; pending: ``max_pending_frames`` per camera; the ingest queue; ``max_queue`` and ``max_in_flight``
questions, two frames each; the DDS reader history, ``qos_depth`` images per camera).
At the end it stops the node with SIGINT (SIGKILL after ``--stop-timeout-s``) and prints its exit status.
``--out DIR`` also writes ``soak.json`` (every sample) and ``soak.png`` (RSS against the promised ceiling, latency).

This module is over 600 lines because it is one benchmark's whole run (the fake server's phases, the streamer
node, the sampler, the promised bound, the report and its plot), each part used by this script alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from machine import cpu_model  # benchmarks/machine.py (this script's folder is on sys.path)

from actial_ros.dds import local_ros_environment
from actial_ros.reasoner import ReasonerConfig

REPO = Path(__file__).resolve().parents[1]
NODE_MODULE = 'actial_ros.nodes.spatial_reasoner'
MODEL = 'fake-actial'
API_KEY = 'soak-key'
MB = 1024 * 1024
INGEST = 'spatial_reasoner: ingest'
BACKEND = 'spatial_reasoner: backend'
ACCURACY = 'spatial_reasoner: accuracy'
FAILURES = {'500': 'HTTP 500', 'refused': 'connection refused', 'both': 'HTTP 500, then connection refused'}


# -- the fake model server (test/fake_openai_server.py) ---------------------------------------------------


def fake_server() -> Any:
    """A started :class:`FakeOpenAIServer` of the test suite (imported from ``test/``)."""
    sys.path.insert(0, str(REPO / 'test'))
    from fake_openai_server import FakeOpenAIServer

    return FakeOpenAIServer(api_key=API_KEY, model=MODEL).start()


def drain_requests(server: Any) -> int:
    """Count and forget the request bodies the fake recorded (each holds two JPEG data URLs)."""
    with server.lock:
        count = len(server.requests)
        server.requests.clear()
    return int(count)


# -- parameters, and the bound they promise ------------------------------------------------------------


def camera_names(count: int) -> list[str]:
    return ['front', 'left', 'right'][:count] if count <= 3 else [f'cam{i}' for i in range(count)]


def mount_yaw_deg(index: int, spread_deg: float) -> float:
    """Mounting yaw of camera ``index`` (left positive): front 0, then +spread, -spread, ..."""
    if index == 0:
        return 0.0
    return spread_deg * ((index + 1) // 2) * (1.0 if index % 2 else -1.0)


def extrinsic(yaw_deg: float) -> tuple[list[float], list[float]]:
    """``T_base_camera_optical`` (translation, quaternion xyzw) of a camera turned ``yaw_deg`` about base z."""
    from scipy.spatial.transform import Rotation

    from actial_ros.geometry import base_to_optical_extrinsic

    rotation = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    yaw = math.radians(yaw_deg)
    translation = [0.1 * math.cos(yaw), 0.1 * math.sin(yaw), 0.3]
    return translation, [float(v) for v in Rotation.from_matrix(rotation).as_quat()]


def node_params(args: argparse.Namespace, base_url: str) -> dict[str, str]:
    names = camera_names(args.cameras)
    params: dict[str, str] = {
        'backend': 'vllm',
        'vllm_base_url': base_url,
        'vllm_model': MODEL,
        'vllm_api_key_env': 'ACTIAL_API_KEY',
        'vllm_timeout_s': str(args.vllm_timeout_s),
        'vllm_max_retries': str(args.vllm_max_retries),
        'max_in_flight': str(args.max_in_flight),
        'max_queue': str(args.max_queue),
        'max_buffer_frames': str(args.max_buffer_frames),
        'max_buffer_mb': str(args.max_buffer_mb),
        'max_pending_frames': str(args.max_pending_frames),
        'qos_depth': str(args.qos_depth),
        'image_qos': args.image_qos,
        'diagnostics_period_s': '1.0',
        'camera_id': names[0],
        'image_topic': f'/{names[0]}/image_raw',
        'camera_info_topic': f'/{names[0]}/camera_info',
        'odometry_topic': '/odom',
    }
    if len(names) > 1:
        params['additional_cameras'] = '[' + ', '.join(names[1:]) + ']'
    for index, name in enumerate(names):
        prefix = '' if index == 0 else f'{name}.'
        translation, rotation = extrinsic(mount_yaw_deg(index, args.mount_spread_deg))
        params[f'{prefix}extrinsic_translation'] = str(translation)
        params[f'{prefix}extrinsic_rotation_xyzw'] = str(rotation)
        if index:
            params[f'{prefix}image_topic'] = f'/{name}/image_raw'
            params[f'{prefix}camera_info_topic'] = f'/{name}/camera_info'
    return params


def promised_bound(args: argparse.Namespace) -> list[tuple[str, int]]:
    """Image bytes the node may hold at most under its parameters, term by term."""
    image = args.width * args.height * 3
    cameras = args.cameras
    buffer_per_camera = min(args.max_buffer_frames * image, int(args.max_buffer_mb * MB))
    ingest_queue = ReasonerConfig().ingest_queue_size  # not a parameter: the engine's default
    return [
        (
            f'frame buffer: {cameras} cameras x min({args.max_buffer_frames} frames x {image:,} B, '
            f'max_buffer_mb {args.max_buffer_mb:g})',
            cameras * buffer_per_camera,
        ),
        (
            f'waiting for odometry: {cameras} cameras x max_pending_frames {args.max_pending_frames}',
            cameras * args.max_pending_frames * image,
        ),
        (f'ingest queue: {ingest_queue} messages (engine default, not a parameter)', ingest_queue * image),
        (f'request queue: max_queue {args.max_queue} questions x 2 frames', args.max_queue * 2 * image),
        (f'in flight: max_in_flight {args.max_in_flight} x 2 frames', args.max_in_flight * 2 * image),
        (f'DDS reader history: {cameras} cameras x qos_depth {args.qos_depth}', cameras * args.qos_depth * image),
    ]


# -- the streaming side (this process) -----------------------------------------------------------------


@dataclass
class Diagnostics:
    """The node's latest /diagnostics values per status name, and the largest buffer figures seen."""

    latest: dict[str, dict[str, str]] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    arrays: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    PEAK_KEYS = (
        (INGEST, 'buffer_frames'),
        (INGEST, 'buffer_pending'),
        (INGEST, 'buffer_bytes'),
        (BACKEND, 'queued'),
        (BACKEND, 'in_flight'),
    )

    def on_array(self, msg: Any) -> None:
        with self.lock:
            self.arrays += 1
            for status in msg.status:
                if status.name.startswith('spatial_reasoner'):
                    self.latest[status.name] = {kv.key: kv.value for kv in status.values}
            for name, key in self.PEAK_KEYS:
                value = self.latest.get(name, {}).get(key)
                if value is not None and value.lstrip('-').isdigit():
                    self.peaks[key] = max(self.peaks.get(key, 0), int(value))

    def snapshot(self) -> dict[str, dict[str, str]]:
        with self.lock:
            return {name: dict(values) for name, values in self.latest.items()}


class Streamer:
    """Publishers of the cameras and the odometry, and the /diagnostics subscriber (own executor thread)."""

    def __init__(self, args: argparse.Namespace, context: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        self.args = args
        self.names = camera_names(args.cameras)
        self.node = Node('actial_soak', context=context)
        reliability = ReliabilityPolicy.RELIABLE if args.image_qos == 'reliable' else ReliabilityPolicy.BEST_EFFORT
        image_qos = QoSProfile(depth=args.qos_depth, reliability=reliability)
        self.image_pubs = [self.node.create_publisher(Image, f'/{n}/image_raw', image_qos) for n in self.names]
        self.info_pubs = [self.node.create_publisher(CameraInfo, f'/{n}/camera_info', image_qos) for n in self.names]
        self.odom_pub = self.node.create_publisher(Odometry, '/odom', QoSProfile(depth=100))
        self.diagnostics = Diagnostics()
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.on_array, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name='soak-spin', daemon=True)
        self._spinner.start()

        # Varying content: a few textured images per camera, cycled, with a strip that changes every frame.
        rng = np.random.default_rng(0)
        gradient = np.linspace(0, 180, args.width)[None, :, None]
        self.textures = [
            [
                np.ascontiguousarray(
                    np.clip(rng.integers(0, 255, (args.height, args.width, 3)) // 4 + gradient, 0, 255).astype(np.uint8)
                )
                for _ in range(args.textures)
            ]
            for _ in self.names
        ]
        self.image = Image(height=args.height, width=args.width, encoding='rgb8', step=args.width * 3)
        self.info = CameraInfo(height=args.height, width=args.width, distortion_model='plumb_bob')
        focal = 0.78 * args.width  # about 65 degrees horizontal field of view
        self.info.k = [focal, 0.0, args.width / 2, 0.0, focal, args.height / 2, 0.0, 0.0, 1.0]
        self.info.p = [focal, 0.0, args.width / 2, 0.0, 0.0, focal, args.height / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
        self.info.d = [0.0] * 5
        self.odom = Odometry()
        self.odom.header.frame_id, self.odom.child_frame_id = 'odom', 'base_link'
        self.images_published = 0
        self.odometry_published = 0

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def matched(self) -> bool:
        pubs = [*self.image_pubs, *self.info_pubs, self.odom_pub]
        return all(p.get_subscription_count() > 0 for p in pubs)

    @staticmethod
    def _stamp(header: Any, stamp_ns: int) -> None:
        header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)

    def publish_images(self, index: int, stamp_ns: int) -> None:
        for camera, (image_pub, info_pub) in enumerate(zip(self.image_pubs, self.info_pubs, strict=True)):
            texture = self.textures[camera][index % len(self.textures[camera])]
            texture[:8] = (index * 7 + camera * 50) % 256
            self.image.header.frame_id = f'{self.names[camera]}_optical'
            self._stamp(self.image.header, stamp_ns)
            self.image.data = texture.tobytes()
            image_pub.publish(self.image)
            self.info.header = self.image.header
            info_pub.publish(self.info)
            self.images_published += 1

    def publish_odometry(self, stamp_ns: int, t_s: float) -> None:
        """The robot drives a circle: yaw = rate x t, speed ``--speed-m-s``."""
        yaw_rate = math.radians(self.args.yaw_rate_deg_s)
        yaw = yaw_rate * t_s
        radius = self.args.speed_m_s / yaw_rate
        pose = self.odom.pose.pose
        pose.position.x, pose.position.y = radius * math.sin(yaw), radius * (1.0 - math.cos(yaw))
        pose.orientation.z, pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        self.odom.twist.twist.linear.x, self.odom.twist.twist.angular.z = self.args.speed_m_s, yaw_rate
        self._stamp(self.odom.header, stamp_ns)
        self.odom_pub.publish(self.odom)
        self.odometry_published += 1

    def close(self) -> None:
        self._stop.set()
        self._spinner.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


# -- the node process ------------------------------------------------------------------------------------


def start_node(params: dict[str, str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, '-m', NODE_MODULE, '--ros-args']
    for name, value in params.items():
        command += ['-p', f'{name}:={value}']
    with log.open('wb') as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_node(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """SIGINT, wait ``timeout_s``, then SIGKILL; describes how it ended."""
    if proc.poll() is not None:
        return f'had already exited with status {proc.returncode}'
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f'did NOT stop within {timeout_s:g} s of SIGINT: killed'
    return f'stopped on SIGINT in {time.monotonic() - started:.1f} s, exit status {code}'


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors='replace')[-chars:] if log.exists() else ''


# -- figures ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t_s: float
    rss: int
    threads: int
    fds: int
    phase: str
    cpu_s: float
    latency_p50_s: float | None = None  # the node's answer latency percentiles as reported at this time
    latency_p95_s: float | None = None


def growth_mb_per_min(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time, MB per minute (nan with fewer than 3 samples)."""
    if len(samples) < 3:
        return float('nan')
    t = np.asarray([s.t_s for s in samples]) / 60.0
    rss = np.asarray([s.rss for s in samples], dtype=np.float64) / MB
    return float(np.polyfit(t, rss, 1)[0])


def mb(value: float) -> str:
    return f'{value / MB:,.1f} MB'


def counters(diag: dict[str, dict[str, str]]) -> dict[str, str]:
    """The node's counters of interest from one diagnostics snapshot (cumulative since its start)."""
    ingest, backend, accuracy = diag.get(INGEST, {}), diag.get(BACKEND, {}), diag.get(ACCURACY, {})

    def total(suffix: str) -> int:
        return sum(int(v) for k, v in accuracy.items() if k.endswith(suffix) and v.lstrip('-').isdigit())

    rows = {
        key: ingest.get(key, '-')
        for key in ('images_received', 'odometry_received', 'frames_posed', 'pairs_made', 'buffer_frames')
    }
    rows['buffer_pending'] = ingest.get('buffer_pending', '-')
    rows['buffer_bytes'] = ingest.get('buffer_bytes', '-')
    rows['questions asked'] = str(total('.asked'))
    rows['requests_done'] = backend.get('requests_done', '-')
    rows['answered'] = str(total('.answered'))
    rows['errors (answer records)'] = str(total('.errors'))
    rows['queued / in_flight'] = f'{backend.get("queued", "-")} / {backend.get("in_flight", "-")}'
    rows['backend healthy'] = backend.get('healthy', '-')
    rows.update({key: value for key, value in sorted(ingest.items()) if key.startswith(('drop_', 'warn_'))})
    return rows


def print_counters(snapshots: list[tuple[str, dict[str, dict[str, str]]]]) -> None:
    columns = [(label, counters(diag)) for label, diag in snapshots]
    keys: list[str] = []
    for _, rows in columns:
        keys += [k for k in rows if k not in keys]
    width = max(len(k) for k in keys)
    print(f'  {"counter":<{width}}' + ''.join(f' | {label:>22}' for label, _ in columns))
    for key in keys:
        print(f'  {key:<{width}}' + ''.join(f' | {rows.get(key, "0"):>22}' for _, rows in columns))


def report(
    args: argparse.Namespace,
    samples: list[Sample],
    baseline: Sample,
    phases: list[tuple[str, float, float]],
    snapshots: list[tuple[str, dict[str, dict[str, str]]]],
    streamer: Streamer,
    server_requests: dict[str, int],
    elapsed_s: float,
    skipped: int,
) -> None:
    print()
    print(
        f'streamed {elapsed_s:.0f} s: {streamer.images_published:,} images '
        f'({streamer.images_published / max(elapsed_s, 1e-9):.1f}/s over {args.cameras} cameras, '
        f'{skipped} camera ticks skipped while behind), {streamer.odometry_published:,} odometry '
        f'({streamer.odometry_published / max(elapsed_s, 1e-9):.1f}/s)'
    )
    print('fake server chat requests per phase: ' + ', '.join(f'{k} {v}' for k, v in server_requests.items()))
    print()
    print(f'node RSS ({len(samples)} samples every {args.sample_s:g} s):')
    print(f'  before streaming (node started, idle): {mb(baseline.rss)}')
    if samples:
        at = min(samples, key=lambda s: abs(s.t_s - args.reference_s))
        half = [s for s in samples if s.t_s >= elapsed_s / 2]
        print(f'  at {at.t_s:.0f} s:                          {mb(at.rss)}')
        if half:
            print(f'  median of the last half ({len(half)} samples):  {mb(float(np.median([s.rss for s in half])))}')
        print(f'  max:                                 {mb(max(s.rss for s in samples))}')
        print(f'  growth over the last half:           {growth_mb_per_min(half):+.2f} MB/min (least squares)')
        cpu_s = samples[-1].cpu_s - baseline.cpu_s
        print(
            f'  threads {min(s.threads for s in samples)}..{max(s.threads for s in samples)}, '
            f'open fds {min(s.fds for s in samples)}..{max(s.fds for s in samples)}; node CPU while streaming '
            f'{cpu_s:.0f} s ({100 * cpu_s / elapsed_s:.0f} % of one core)'
        )
        print()
        print('  | phase | from s | to s | samples | first | median | max | growth MB/min |')
        print('  |---|---|---|---|---|---|---|---|')
        for label, start, end in phases:
            chunk = [s for s in samples if s.phase == label]
            if not chunk:
                continue
            rss = [s.rss for s in chunk]
            growth = growth_mb_per_min([s for s in chunk if s.t_s >= args.reference_s])
            print(
                f'  | {label} | {start:.0f} | {end:.0f} | {len(chunk)} | {mb(rss[0])} | {mb(float(np.median(rss)))} '
                f'| {mb(max(rss))} | {"-" if math.isnan(growth) else f"{growth:+.2f}"} |'
            )
        print(f'  (growth per phase: samples after {args.reference_s:g} s only, least squares; -: fewer than 3)')
    print()
    print('node counters from /diagnostics (cumulative):')
    print_counters(snapshots)
    with streamer.diagnostics.lock:
        peaks = dict(streamer.diagnostics.peaks)
    print(
        '  largest seen in any diagnostics: '
        + ', '.join(f'{k} {mb(v) if k == "buffer_bytes" else v}' for k, v in peaks.items())
    )
    print()
    terms = promised_bound(args)
    bound = sum(value for _, value in terms)
    print(f'bound on image data the parameters promise ({args.width}x{args.height} rgb8):')
    for label, value in terms:
        print(f'  {label:<92} {mb(value):>12}')
    print(f'  {"total":<92} {mb(bound):>12}')
    if samples:
        peak = max(s.rss for s in samples)
        ceiling = baseline.rss + bound
        verdict = 'within' if peak <= ceiling else 'ABOVE'
        print(
            f'  RSS before streaming + that bound = {mb(ceiling)}; max RSS {mb(peak)} is {verdict} it '
            f'(headroom {mb(ceiling - peak)})'
        )


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def write_results(
    args: argparse.Namespace, samples: list[Sample], baseline: Sample, phases: list[tuple[str, float, float]]
) -> None:
    """Write ``soak.json`` (every sample, the phases, the promised ceiling) and ``soak.png`` (matplotlib, the
    ``plots`` extra; skipped, saying so, without it) into ``args.out``."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ceiling = baseline.rss + sum(value for _, value in promised_bound(args))
    results = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}',
        'arguments': {k: str(v) for k, v in vars(args).items()},
        'baseline': asdict(baseline),
        'ceiling_bytes': ceiling,
        'phases': [{'phase': label, 'from_s': start, 'to_s': end} for label, start, end in phases],
        'samples': [asdict(s) for s in samples],
    }
    (out / 'soak.json').write_text(json.dumps(results, indent=1) + '\n')
    print(f'results: {out / "soak.json"}')
    plotted = plot_results(results, out / 'soak.png')
    print(f'plot: {plotted}' if plotted else "plot: skipped (no matplotlib: pip install 'actial_ros[plots]')")


def plot_results(results: dict[str, Any], path: Path) -> Path | None:
    """Draw ``soak.json``: the node's RSS over time against the ceiling its parameters promise (above), and its
    answer latency p50/p95 as /diagnostics reported them (below; cumulative percentiles), the server's phases
    shaded. Returns ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    samples = results['samples']
    t = [s['t_s'] for s in samples]
    figure, (rss_axis, latency_axis) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    rss_axis.plot(t, [s['rss'] / MB for s in samples], color='tab:blue', label='node RSS')
    rss_axis.axhline(results['baseline']['rss'] / MB, color='tab:grey', linestyle=':', label='RSS before streaming')
    rss_axis.axhline(results['ceiling_bytes'] / MB, color='tab:red', linestyle='--', label='promised ceiling')
    rss_axis.set(ylabel='MiB', title='spatial_reasoner soak: memory and answer latency')
    rss_axis.legend(loc='center right', fontsize=8)
    for axis in (rss_axis, latency_axis):
        for index, phase in enumerate(results['phases']):
            axis.axvspan(phase['from_s'], phase['to_s'], color=f'C{index + 2}', alpha=0.08)
            if axis is rss_axis:
                axis.text(phase['from_s'], 0.02, f' {phase["phase"]}', transform=axis.get_xaxis_transform(), fontsize=8)
        axis.grid(True, alpha=0.3)
    for key, style in (('latency_p50_s', '-'), ('latency_p95_s', '--')):
        points = [(s['t_s'], s[key]) for s in samples if s.get(key) is not None]
        if points:
            latency_axis.plot(*zip(*points, strict=True), linestyle=style, color='tab:purple', label=key[8:11])
    latency_axis.set(xlabel='time since streaming started (s)', ylabel='answer latency (s)')
    latency_axis.legend(loc='upper left', fontsize=8)
    figure.suptitle(f'{results["date"]}, {results["machine"]}', fontsize=8, y=0.995)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


# -- the run ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    import rclpy

    workdir = Path(tempfile.mkdtemp(prefix='actial_soak_'))
    log = args.log or workdir / 'spatial_reasoner.log'
    env = local_ros_environment(domain_id=args.domain_id, profile_dir=workdir)
    env['ACTIAL_API_KEY'] = API_KEY
    env.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    os.environ.update(env)
    server = fake_server()
    server.delay_s = args.server_delay_s
    params = node_params(args, server.base_url)
    print(
        f'machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, {platform.machine()}; '
        f'ROS_DOMAIN_ID {args.domain_id}, discovery LOCALHOST; node log {log}'
    )
    print(
        f'stream: {args.cameras} x {args.width}x{args.height} rgb8 at {args.camera_rate_hz:g} Hz ({args.image_qos}), '
        f'odometry {args.odometry_rate_hz:g} Hz, circle at {args.yaw_rate_deg_s:g} deg/s; '
        f'{args.duration_s:g} s: server delay {args.server_delay_s:g} s for the first half, then '
        f'{FAILURES[args.fail_mode]}'
    )
    print(
        'node: ' + ' '.join(f'{k}:={v}' for k, v in params.items() if 'extrinsic' not in k and 'topic' not in k) + '\n',
        flush=True,
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    proc = start_node(params, env, log)
    streamer: Streamer | None = None
    try:
        process = psutil.Process(proc.pid)
        streamer = Streamer(args, context)
        deadline = time.monotonic() + 60
        while not (streamer.matched() and streamer.diagnostics.arrays > 0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f'the node did not come up (status {proc.poll()}):\n{log_tail(log)}')
            time.sleep(0.1)
        time.sleep(2.0)  # discovery settles; the node is idle

        def sample(t_s: float, phase: str) -> Sample:
            with process.oneshot():
                cpu = process.cpu_times()
                rss, threads, fds = process.memory_info().rss, process.num_threads(), process.num_fds()
            return Sample(t_s, rss, threads, fds, phase, cpu.user + cpu.system)

        baseline = sample(0.0, 'idle')
        half = args.duration_s / 2
        boundaries = [(0.0, f'slow ({args.server_delay_s:g} s)')]
        if args.fail_mode == 'both':
            boundaries += [(half, 'HTTP 500'), (args.duration_s * 0.75, 'refused')]
        else:
            boundaries += [(half, 'HTTP 500' if args.fail_mode == '500' else 'refused')]
        phase_index = 0
        phase = boundaries[0][1]
        phases: list[tuple[str, float, float]] = []
        snapshots: list[tuple[str, dict[str, dict[str, str]]]] = []
        server_requests: dict[str, int] = {}
        samples: list[Sample] = []
        image_period, odom_period = 1.0 / args.camera_rate_hz, 1.0 / args.odometry_rate_hz
        next_image = next_odom = skipped = 0
        next_sample = args.sample_s
        stamp0 = time.time_ns()
        t0 = time.monotonic()
        print(f'{"t s":>6} {"phase":<12} {"RSS":>10} {"threads":>7} {"fds":>4}  images posed pairs done queued')
        while True:
            now = time.monotonic() - t0
            if now >= args.duration_s:
                break
            if proc.poll() is not None:
                raise SystemExit(f'the node exited with status {proc.returncode} at {now:.0f} s:\n{log_tail(log)}')
            if phase_index + 1 < len(boundaries) and now >= boundaries[phase_index + 1][0]:
                snapshots.append((f'end of {phase}', streamer.diagnostics.snapshot()))
                server_requests[phase] = server_requests.get(phase, 0) + drain_requests(server)
                phases.append((phase, boundaries[phase_index][0], now))
                phase_index += 1
                phase = boundaries[phase_index][1]
                if phase == 'HTTP 500':
                    server.delay_s = 0.0
                    server.fail_next(10**9, 500)
                elif phase == 'refused':
                    server.stop()
                print(f'{now:6.0f} -> {phase}', flush=True)
            while next_odom * odom_period <= now:
                t_s = next_odom * odom_period
                streamer.publish_odometry(stamp0 + int(t_s * 1e9), t_s)
                next_odom += 1
            if next_image * image_period <= now:
                behind = now - next_image * image_period
                if behind > 0.5:  # the machine stalled: skip ticks rather than burst
                    missed = int(behind / image_period)
                    skipped += missed
                    next_image += missed
                t_s = next_image * image_period
                streamer.publish_images(next_image, stamp0 + int(t_s * 1e9))
                next_image += 1
            if now >= next_sample:
                diag = streamer.diagnostics.snapshot()
                ingest, backend = diag.get(INGEST, {}), diag.get(BACKEND, {})
                accuracy = diag.get(ACCURACY, {})
                samples.append(
                    replace(
                        sample(now, phase),
                        latency_p50_s=_seconds(accuracy.get('latency_p50_s')),
                        latency_p95_s=_seconds(accuracy.get('latency_p95_s')),
                    )
                )
                next_sample += args.sample_s
                s = samples[-1]
                print(
                    f'{now:6.0f} {phase:<12} {mb(s.rss):>10} {s.threads:>7} {s.fds:>4}  '
                    f'{ingest.get("images_received", "-")} {ingest.get("frames_posed", "-")} '
                    f'{ingest.get("pairs_made", "-")} {backend.get("requests_done", "-")} '
                    f'{backend.get("queued", "-")}',
                    flush=True,
                )
                server_requests[phase] = server_requests.get(phase, 0) + drain_requests(server)
            wake = min(next_image * image_period, next_odom * odom_period, next_sample)
            delay = wake - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
        elapsed = time.monotonic() - t0
        phases.append((phase, boundaries[phase_index][0], elapsed))
        server_requests[phase] = server_requests.get(phase, 0) + drain_requests(server)
        time.sleep(2.5)  # the last diagnostics (period 1 s) arrive
        snapshots.append((f'end of {phase}', streamer.diagnostics.snapshot()))
        samples.append(sample(elapsed, phase))
        report(args, samples, baseline, phases, snapshots, streamer, server_requests, elapsed, skipped)
        if args.out is not None:
            write_results(args, samples, baseline, phases)
    finally:
        print()
        print(f'node: {stop_node(proc, args.stop_timeout_s)}')
        if streamer is not None:
            streamer.close()
        server.stop()
        context.try_shutdown()
    print(f'node log: {log}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--duration-s', type=float, default=600.0, help='streaming time (s)')
    parser.add_argument('--sample-s', type=float, default=5.0, help='RSS sampling period (s)')
    parser.add_argument('--reference-s', type=float, default=60.0, help='early RSS figure at this time (s)')
    parser.add_argument('--cameras', type=int, default=3)
    parser.add_argument('--camera-rate-hz', type=float, default=30.0, help='images per second per camera')
    parser.add_argument('--odometry-rate-hz', type=float, default=50.0)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--textures', type=int, default=8, help='distinct base images per camera (cycled)')
    parser.add_argument('--yaw-rate-deg-s', type=float, default=30.0, help='turn rate of the circle')
    parser.add_argument('--speed-m-s', type=float, default=0.3, help='speed along the circle')
    parser.add_argument('--mount-spread-deg', type=float, default=40.0, help='yaw between camera mountings')
    parser.add_argument('--server-delay-s', type=float, default=2.0, help='fake server reply delay, first half')
    parser.add_argument('--fail-mode', choices=('500', 'refused', 'both'), default='both', help='second half')
    parser.add_argument('--image-qos', choices=('reliable', 'sensor_data'), default='reliable')
    parser.add_argument('--qos-depth', type=int, default=10)
    parser.add_argument('--vllm-timeout-s', type=float, default=5.0)
    parser.add_argument('--vllm-max-retries', type=int, default=2)
    parser.add_argument('--max-in-flight', type=int, default=4)
    parser.add_argument('--max-queue', type=int, default=64)
    parser.add_argument('--max-buffer-frames', type=int, default=64)
    parser.add_argument('--max-buffer-mb', type=float, default=256.0)
    parser.add_argument('--max-pending-frames', type=int, default=32)
    parser.add_argument('--domain-id', type=int, default=77)
    parser.add_argument('--stop-timeout-s', type=float, default=30.0)
    parser.add_argument('--log', type=Path, help='node log file (default: in a new temp directory)')
    parser.add_argument('--out', type=Path, help='write soak.json and soak.png (matplotlib) into this directory')
    args = parser.parse_args()
    if args.duration_s <= 0 or args.sample_s <= 0 or args.cameras < 1:
        parser.error('--duration-s, --sample-s and --cameras must be positive')
    with contextlib.suppress(KeyboardInterrupt):
        run(args)


if __name__ == '__main__':
    main()

"""``actial-ros demo``: the node on a real capture or a recorded bag, end to end over ROS 2 (the main job).

Starts the ``spatial_reasoner`` node and the ``capture_replay`` node (captures) or the ``bag_replay``
node (``--bag``: a rosbag2 recording, one or several cameras) as separate processes talking over real
DDS on loopback (an isolated domain), collects every answer published on ``/spatial_reasoner/answers``
in this process, writes them as JSON lines and prints a summary table.

For a bag, the node's cameras are the bag's (:func:`actial_ros.sources.bag_layout.read_bag_layout`: the
cameras of ``recording.json``, or ``--camera``/``--extrinsic``/``--camera-file``, or the one image topic
found by type), with their topics, transports and extrinsics, and the bag's odometry topic.

Each JSONL row (:meth:`actial_ros.records.AnswerRow.to_json_dict`) carries ``image_1``, ``image_2`` (capture file
names; ``CAMERA@STAMP_NS`` for bags, with the bag's own header stamps even when re-stamped), ``stamp_1``, ``stamp_2``
(ns, as published), ``question_type``, ``truth``, ``answer`` (label or null), ``correct``, ``yaw_deg``,
``latency_s``, ``backend``, plus the rest of the node's answer record (question, options, raw text, status, ...).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from actial_ros.backends.defaults import DEFAULT_BASE_URL, DEFAULT_MODEL
from actial_ros.bags.camera_specs import BagCamera, default_camera_info_topic
from actial_ros.bags.reading import image_message_counts
from actial_ros.dds import local_ros_environment
from actial_ros.errors import ActialError, ConfigError
from actial_ros.message_fields import pose_fields
from actial_ros.records import AnswerRecord, AnswerRow, Record
from actial_ros.report import write_report
from actial_ros.scoring import ScoreBoard
from actial_ros.sources.bag_layout import read_bag_layout, view_name
from actial_ros.sources.base import SourceOptions
from actial_ros.sources.llff import LlffCapture
from actial_ros.sources.rosbag import RosbagCapture

__all__ = ['DemoOptions', 'DemoResult', 'frame_loader', 'run_demo', 'summary_table']


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the demo runs.

    Attributes:
        capture: LLFF capture directory (the primary camera); ``None`` with ``bag``.
        extra_captures: further captures of the same rig (one world frame), one camera each.
        out: JSON-lines output file.
        backend: 'geometry' or 'vllm'.
        rate_hz: replay rate (frames per second of stamp time and of publishing).
        transport: 'raw' (Image) or 'compressed' (CompressedImage).
        vllm_base_url, vllm_model: the endpoint when ``backend == 'vllm'``.
        transformers_model: checkpoint directory or hub id when ``backend == 'transformers'``.
        params_file: optional node parameter YAML (applied before the demo's overrides).
        node_parameters: extra ``name:=value`` node parameter overrides.
        domain_id: ROS domain; ``None``: derived from the process id.
        timeout_s: give up waiting for answers after this long (seconds, wall clock).
        progress: show a live progress display.
        bag: a rosbag2 recording to replay instead of captures (``bag_replay``).
        cameras: the bag's cameras when ``recording.json`` does not list them (``--camera``, ...).
        speed: bag playback speed factor.
        restamp: re-stamp the bag's messages to the current time (one offset) instead of their stamps.
        report: also write a self-contained HTML report here (:mod:`actial_ros.report`): the accuracy
            table and every pair with its frames and answers.

    Raises:
        ConfigError: neither or both of ``capture`` and ``bag``.
    """

    capture: Path | None
    out: Path
    extra_captures: tuple[Path, ...] = ()
    backend: str = 'geometry'
    rate_hz: float = 4.0
    transport: str = 'raw'
    vllm_base_url: str = DEFAULT_BASE_URL
    vllm_model: str = DEFAULT_MODEL
    transformers_model: str = ''
    params_file: Path | None = None
    node_parameters: tuple[str, ...] = ()
    domain_id: int | None = None
    timeout_s: float = 600.0
    progress: bool = True
    bag: Path | None = None
    cameras: tuple[BagCamera, ...] = ()
    speed: float = 1.0
    restamp: bool = False
    report: Path | None = None

    def __post_init__(self) -> None:
        if (self.capture is None) == (self.bag is None):
            raise ConfigError('the demo replays either a capture or a bag')
        if self.bag is not None and self.extra_captures:
            raise ConfigError('further captures (--capture) and a bag exclude each other')
        if not self.speed > 0:
            raise ConfigError(f'speed must be > 0, got {self.speed}')


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Outcome of a demo run.

    Attributes:
        rows: the rows written as JSON lines (viewpoint answers only).
        frames_published: frames the replay published.
        scores: per question type tallies of ``rows``.
        diagnostics: the last ``/diagnostics`` values of the node, status name -> key -> value.
    """

    rows: list[AnswerRow]
    frames_published: int
    scores: ScoreBoard
    diagnostics: dict[str, dict[str, str]]


def _ros_args(parameters: Sequence[str]) -> list[str]:
    args: list[str] = []
    for parameter in parameters:
        args += ['-p', parameter]
    return args


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the demo; returns the rows and scores (also written to ``options.out``).

    Raises:
        CaptureError: the capture or bag cannot be read (or its cameras do not resolve).
        ActialError: a process failed, or no frame reached the node before the timeout.
    """
    console = console or Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix='actial_demo_'))
    manifest_path = workdir / 'manifest.jsonl'
    if options.bag is not None:
        return _run(options, console, workdir, _bag_plan(options, manifest_path))
    assert options.capture is not None
    captures = [options.capture, *options.extra_captures]
    total_frames = sum(len(LlffCapture.open(path)) for path in captures)  # fail early on a bad capture
    node_cmd = _node_command(options, [])
    image_topic = '/camera/image_raw/compressed' if options.transport == 'compressed' else '/camera/image_raw'
    replay_cmd = [
        sys.executable,
        '-m',
        'actial_ros.nodes.capture_replay',
        '--ros-args',
        *_ros_args(
            [
                f'capture:={Path(options.capture).resolve()}',
                f'rate_hz:={float(options.rate_hz)}',
                f'image_transport:={options.transport}',
                f'manifest:={manifest_path}',
                f'image_topic:={image_topic}',
            ]
        ),
    ]
    if options.transport == 'compressed':
        node_cmd += ['-p', 'image_transport:=compressed', '-p', 'image_topic:=/camera/image_raw/compressed']
    if options.extra_captures:
        # Each further capture is one more camera of the same rig (same world frame), on its own topics.
        camera_names = [f'camera_{i}' for i in range(1, len(captures))]
        suffix = '/compressed' if options.transport == 'compressed' else ''
        camera_params = [f'additional_cameras:=[{",".join(camera_names)}]']
        camera_params += [f'{name}.image_topic:=/{name}/image_raw{suffix}' for name in camera_names]
        node_cmd += _ros_args(camera_params)
        pairs = zip(camera_names, captures[1:], strict=True)
        replay_cmd += _ros_args(camera_params + [f'{name}.capture:={Path(path).resolve()}' for name, path in pairs])
    plan = _Plan(node_cmd, replay_cmd, total_frames, lambda: _read_manifest(manifest_path))
    return _run(options, console, workdir, plan)


@dataclass(frozen=True)
class _Plan:
    """The two processes of a demo, the frames to expect, and how to name the frames afterwards."""

    node_cmd: list[str]
    replay_cmd: list[str]
    total_frames: int
    names: Callable[[], dict[tuple[int, str], str]]


def _node_command(options: DemoOptions, camera_params: list[str]) -> list[str]:
    """The spatial_reasoner command: backend, then ``camera_params``, then the user's overrides (which win)."""
    node_params = [f'backend:={options.backend}']
    if options.backend == 'vllm':
        node_params += [f'vllm_base_url:={options.vllm_base_url}', f'vllm_model:={options.vllm_model}']
    if options.backend == 'transformers':
        if not options.transformers_model:
            raise ActialError('the transformers backend needs a checkpoint: --transformers-model DIR')
        node_params += [f'transformers_model:={options.transformers_model}']
    node_params += camera_params
    node_params += list(options.node_parameters)
    node_cmd = [sys.executable, '-m', 'actial_ros.nodes.spatial_reasoner', '--ros-args']
    if options.params_file is not None:
        node_cmd += ['--params-file', str(options.params_file)]
    return node_cmd + _ros_args(node_params)


def _floats(values: Any) -> str:
    """A YAML list of doubles for a ``-p name:=[...]`` override (fixed notation: always parsed as floats)."""
    return '[' + ', '.join(f'{float(v):.17f}' for v in values) + ']'


def _bag_plan(options: DemoOptions, manifest_path: Path) -> _Plan:
    """Node parameters matching the bag's cameras and odometry, and the bag_replay command."""
    assert options.bag is not None
    bag = Path(options.bag).expanduser().resolve()
    layout = read_bag_layout(bag, SourceOptions(cameras=options.cameras))
    counts = image_message_counts(bag, [camera.image_topic for camera in layout.cameras])
    params = [f'odometry_topic:={layout.odometry_topic}', 'image_qos:=reliable']
    extra = layout.cameras[1:]
    if extra:
        params.append(f'additional_cameras:=[{",".join(camera.name for camera in extra)}]')
    for index, camera in enumerate(layout.cameras):
        prefix = '' if index == 0 else f'{camera.name}.'
        translation, rotation = pose_fields(camera.matrix)
        if index == 0:
            params.append(f'camera_id:={camera.name}')
        params += [
            f'{prefix}image_topic:={camera.image_topic}',
            f'{prefix}image_transport:={camera.transport}',
            f'{prefix}camera_info_topic:={camera.camera_info_topic or default_camera_info_topic(camera.image_topic)}',
            f'{prefix}extrinsic_translation:={_floats(translation)}',
            f'{prefix}extrinsic_rotation_xyzw:={_floats(rotation)}',
        ]
    replay_cmd = [
        sys.executable,
        '-m',
        'actial_ros.nodes.bag_replay',
        '--ros-args',
        *_ros_args(
            [
                f'bag:={bag}',
                f'rate:={float(options.speed)}',
                f'restamp:={"true" if options.restamp else "false"}',
                f'manifest:={manifest_path}',
                f'wait_topics:=[{",".join([*(c.image_topic for c in layout.cameras), layout.odometry_topic])}]',
            ]
        ),
    ]
    cameras = {camera.image_topic: camera.name for camera in layout.cameras}

    def names() -> dict[tuple[int, str], str]:
        """(published stamp, camera) -> ``CAMERA@BAG_STAMP``, from bag_replay's manifest."""
        if not manifest_path.exists():
            return {}
        found: dict[tuple[int, str], str] = {}
        for line in manifest_path.read_text().splitlines():
            entry = json.loads(line)
            camera = cameras.get(str(entry['topic']))
            if camera is not None and entry.get('stamp_ns') is not None:
                found[(int(entry['published_stamp_ns']), camera)] = view_name(camera, int(entry['stamp_ns']))
        return found

    return _Plan(_node_command(options, params), replay_cmd, sum(counts.values()), names)


def _run(options: DemoOptions, console: Console, workdir: Path, plan: _Plan) -> DemoResult:
    """Start the node, then the replay, collect the answers, write the rows."""
    env = local_ros_environment(domain_id=options.domain_id, profile_dir=workdir)
    os.environ.update(env)
    node_cmd, replay_cmd, total_frames = plan.node_cmd, plan.replay_cmd, plan.total_frames

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node

    from actial_ros.nodes.answer_msgs import answer_msg_to_record
    from actial_ros_msgs.msg import ViewpointAnswer

    records: list[Record] = []
    diagnostics: dict[str, dict[str, str]] = {}
    rclpy.init()
    collector = Node('actial_demo_collector')
    collector.create_subscription(
        ViewpointAnswer, '/spatial_reasoner/answers', lambda msg: records.append(answer_msg_to_record(msg)), 1000
    )

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('spatial_reasoner'):
                diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    collector.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    logs = {name: open(workdir / f'{name}.log', 'w') for name in ('node', 'replay')}  # noqa: SIM115
    node_proc = subprocess.Popen(node_cmd, env=env, stdout=logs['node'], stderr=subprocess.STDOUT)
    replay_proc: subprocess.Popen[bytes] | None = None
    try:
        # Start the replay once the node's answer publisher is matched (the node is up).
        deadline = time.monotonic() + 60.0
        while collector.count_publishers('/spatial_reasoner/answers') == 0:
            rclpy.spin_once(collector, timeout_sec=0.1)
            if node_proc.poll() is not None:
                raise ActialError(
                    f'the spatial_reasoner node exited early; see {workdir / "node.log"}:\n'
                    + (workdir / 'node.log').read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                raise ActialError('the spatial_reasoner node did not come up within 60 s')
        replay_proc = subprocess.Popen(replay_cmd, env=env, stdout=logs['replay'], stderr=subprocess.STDOUT)
        _wait(collector, records, diagnostics, node_proc, replay_proc, total_frames, options, console, workdir)
    finally:
        for proc in (replay_proc, node_proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in logs.values():
            log.close()
        collector.destroy_node()
        rclpy.try_shutdown()

    names = plan.names()
    rows = [_row(record, names) for record in records if isinstance(record, AnswerRecord)]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = options.out.with_name(options.out.name + '.tmp')
    with tmp.open('w') as handle:
        for row in rows:
            handle.write(json.dumps(row.to_json_dict()) + '\n')
    tmp.replace(options.out)
    if options.report is not None:
        write_report(options.report, rows, load_frame=_frame_loader(options), title='actial_ros demo')
    scores = ScoreBoard()
    scores.extend(row.record for row in rows)
    return DemoResult(rows=rows, frames_published=len(names), scores=scores, diagnostics=diagnostics)


def _wait(
    collector: Any,
    records: list[Record],
    diagnostics: dict[str, dict[str, str]],
    node_proc: subprocess.Popen[bytes],
    replay_proc: subprocess.Popen[bytes],
    total_frames: int,
    options: DemoOptions,
    console: Console,
    workdir: Path,
) -> None:
    import rclpy

    deadline = time.monotonic() + options.timeout_s
    idle_since: float | None = None
    with Progress(
        TextColumn('[bold]{task.description}'),
        BarColumn(),
        TextColumn('{task.completed}/{task.total} frames'),
        TextColumn('{task.fields[status]}'),
        TimeElapsedColumn(),
        console=console,
        disable=not options.progress,
        transient=False,
    ) as progress:
        task = progress.add_task('demo', total=total_frames, status='')
        while time.monotonic() < deadline:
            rclpy.spin_once(collector, timeout_sec=0.1)
            ingest = diagnostics.get('spatial_reasoner: ingest', {})
            backend = diagnostics.get('spatial_reasoner: backend', {})
            received = int(ingest.get('images_received', 0))
            progress.update(
                task,
                completed=min(received, total_frames),
                status=f'pairs {ingest.get("pairs_made", 0)}, answers {len(records)}, '
                f'in flight {backend.get("in_flight", 0)}',
            )
            if node_proc.poll() is not None:
                raise ActialError(
                    f'the spatial_reasoner node died (exit {node_proc.returncode}); log:\n'
                    + (workdir / 'node.log').read_text()[-2000:]
                )
            if replay_proc.poll() is None:
                continue
            if replay_proc.returncode != 0:
                raise ActialError(
                    f'the replay failed (exit {replay_proc.returncode}); log:\n'
                    + (workdir / 'replay.log').read_text()[-2000:]
                )
            done = int(backend.get('requests_done', -1))
            idle = backend.get('idle') == 'True' and done >= 0 and len(records) >= done
            if idle and received >= total_frames:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 1.5:
                    return
            elif idle:
                # Best-effort images may have been lost; wait a little, then finish with what came.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 5.0:
                    console.print(f'[yellow]the node received {received} of {total_frames} frames')
                    return
            else:
                idle_since = None
    raise ActialError(f'timed out after {options.timeout_s:g} s waiting for answers; logs in {workdir}')


def _frame_loader(options: DemoOptions) -> Callable[[str, str], Any]:
    """``(camera, frame name) -> RGB image or None`` over the demo's capture(s) or bag, for the report."""
    captures = () if options.capture is None else (options.capture, *options.extra_captures)
    return frame_loader(bag=options.bag, captures=captures, cameras=options.cameras)


def frame_loader(
    *, bag: Path | None = None, captures: Sequence[Path] = (), cameras: Sequence[BagCamera] = ()
) -> Callable[[str, str], Any]:
    """The report's frame loader (:data:`actial_ros.report.FrameLoader`) over a bag or the captures of a demo run.

    Args:
        bag: the rosbag2 recording the answers came from (its views are found by the frame's name, the node's
            ``CAMERA@STAMP_NS``, or by the bare stamp of a one-camera bag).
        captures: LLFF captures instead, the first one named ``camera``, the k-th further one ``camera_k`` (the
            demo's camera names).
        cameras: the bag's cameras when its ``recording.json`` does not list them.

    Raises:
        ConfigError: neither a bag nor a capture; CaptureError: a source that cannot be opened.
    """
    if bag is not None:
        recording = RosbagCapture.open(bag, options=SourceOptions(cameras=tuple(cameras)))
        bag_index = {view.name: index for index, view in enumerate(recording.views)}

        def from_bag(camera: str, name: str) -> Any:
            # The node names a frame CAMERA@STAMP_NS; a one-camera bag names its views by the bare stamp.
            index = bag_index.get(name)
            if index is None:
                index = bag_index.get(name.rpartition('@')[2])
            return None if index is None else recording.load_image(index)

        return from_bag
    if not captures:
        raise ConfigError('a report needs the bag or the capture its answers came from')
    opened = {'camera' if k == 0 else f'camera_{k}': LlffCapture.open(path) for k, path in enumerate(captures)}
    capture_index = {
        (camera, view.name): index for camera, capture in opened.items() for index, view in enumerate(capture.views)
    }

    def from_capture(camera: str, name: str) -> Any:
        index = capture_index.get((camera, name))
        return None if index is None else opened[camera].load_frame(index).image

    return from_capture


def _read_manifest(path: Path) -> dict[tuple[int, str], str]:
    """(stamp_ns, camera) -> capture file name, from the replay's manifest."""
    if not path.exists():
        return {}
    names: dict[tuple[int, str], str] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        names[(int(entry['stamp_ns']), str(entry.get('camera', 'camera')))] = str(entry['name'])
    return names


def _row(record: AnswerRecord, names: dict[tuple[int, str], str]) -> AnswerRow:
    """The record with its frames' names (the replay's, else the node's)."""
    return AnswerRow(
        record,
        image_1=names.get((record.stamp_1, record.camera_1), record.frame_1),
        image_2=names.get((record.stamp_2, record.camera_2), record.frame_2),
    )


def summary_table(result: DemoResult) -> Table:
    """The demo's closing table: pairs, questions, answered, abstained, accuracy per type, latency."""
    table = Table(title='actial_ros demo: answers scored against odometry')
    for column in ('question type', 'asked', 'answered', 'unparsed', 'abstained', 'errors', 'accuracy'):
        table.add_column(column, justify='right' if column != 'question type' else 'left')
    scores = result.scores.scores()
    for kind, score in sorted(scores.items()):
        accuracy = score.accuracy
        table.add_row(
            kind,
            str(score.asked),
            str(score.answered),
            str(score.unparsed),
            str(score.abstained),
            str(score.errors),
            '-' if accuracy is None else f'{100 * accuracy:.1f} % ({score.correct}/{score.scored})',
        )
    total = result.scores.total()
    accuracy = total.accuracy
    table.add_row(
        '[bold]all',
        str(total.asked),
        str(total.answered),
        str(total.unparsed),
        str(total.abstained),
        str(total.errors),
        '-' if accuracy is None else f'{100 * accuracy:.1f} % ({total.correct}/{total.scored})',
    )
    p50, p95 = result.scores.latency_percentiles(50, 95)
    pairs = len({row.record.pair_id for row in result.rows})
    table.caption = (
        f'frames published {result.frames_published}, pairs {pairs}, questions {total.asked}; latency p50 '
        + ('-' if p50 is None else f'{1000 * p50:.1f} ms')
        + ', p95 '
        + ('-' if p95 is None else f'{1000 * p95:.1f} ms')
        + '. Accuracy counts unparsed replies as wrong; abstentions and errors are excluded.'
    )
    return table

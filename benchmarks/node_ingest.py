"""Benchmark of the spatial_reasoner node's ingestion (run by hand; prints figures).

    .venv/bin/python benchmarks/node_ingest.py [--seconds 4] [--rates 15,30,60,120,240]

Measures, for 640x480 frames:
1. the subscription callback's cost per Image / CompressedImage message (what blocks the executor);
2. the ingest thread's cost per frame (decode, odometry match with slerp, buffer, pair selection
   against a full 64-frame buffer);
3. the cost of preparing one model request (two frames to JPEG data URLs, resized to <= 960x540);
4. the highest image rate, published from another process over real DDS (loopback, 16 MB Fast DDS
   shared-memory profile), that the node sustains with zero blocked callbacks (no ingest-queue drop,
   every callback shorter than the frame period) and every image ingested.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np

from actial_ros.dds import local_ros_environment


def _percentiles(values: list[float]) -> str:
    array = np.asarray(values) * 1e3
    return f'median {np.median(array):.3f} ms, p95 {np.percentile(array, 95):.3f} ms, max {array.max():.3f} ms'


def _image_msg(rgb: np.ndarray, stamp_ns: int) -> Any:
    from sensor_msgs.msg import Image

    from actial_ros.imaging import rgb_to_image_fields

    fields = rgb_to_image_fields(rgb, 'rgb8')
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.height, msg.width, msg.encoding, msg.step = fields.height, fields.width, fields.encoding, fields.step
    msg.data = fields.data
    return msg


def bench_costs(repeats: int = 200) -> None:
    import rclpy
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CompressedImage

    from actial_ros.frame import CameraIntrinsics, Frame
    from actial_ros.imaging import compressed_msg_to_rgb, image_msg_to_rgb, jpeg_data_url, rgb_to_compressed
    from actial_ros.message_fields import odometry_to_transform
    from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode
    from actial_ros.pairing import PairingBuffer, PairPolicy

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    rgb = np.ascontiguousarray(
        np.clip(rgb.astype(np.int16) // 4 + np.linspace(0, 180, 640)[None, :, None], 0, 255).astype(np.uint8)
    )
    rclpy.init()
    node = SpatialReasonerNode()
    node.engine.stop()  # measure the callback alone: nothing consumes the queue
    raw_times, compressed_times = [], []
    fmt, data = rgb_to_compressed(rgb, 'jpeg', 90)
    for i in range(repeats):
        msg = _image_msg(rgb, i * 1000)
        start = time.perf_counter()
        node._submit('camera', msg, image_msg_to_rgb)
        raw_times.append(time.perf_counter() - start)
        cmsg = CompressedImage()
        cmsg.header.stamp.sec, cmsg.header.stamp.nanosec = 0, i * 1000 + 1
        cmsg.format, cmsg.data = fmt, data
        start = time.perf_counter()
        node._submit('camera', cmsg, compressed_msg_to_rgb)
        compressed_times.append(time.perf_counter() - start)
    node.destroy_node()
    rclpy.shutdown()
    print(f'1. callback per 640x480 Image (rgb8):        {_percentiles(raw_times)}')
    print(f'   callback per 640x480 CompressedImage:     {_percentiles(compressed_times)}')

    # 2. ingest thread's work per frame, buffer full (64 frames), robot spinning in place.
    from scipy.spatial.transform import Rotation

    buffer = PairingBuffer(pair_policy=PairPolicy(max_frame_uses=1000))
    k = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
    odom = Odometry()
    odom.pose.pose.orientation.w = 1.0
    decode_raw, decode_jpeg, match = [], [], []
    msg = _image_msg(rgb, 0)
    cmsg = CompressedImage()
    cmsg.format, cmsg.data = fmt, data
    for i in range(repeats):
        stamp = i * 33_000_000
        x, y, z, w = Rotation.from_euler('z', i * 3.0, degrees=True).as_quat()
        odom.pose.pose.orientation.x, odom.pose.pose.orientation.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = z, w
        start = time.perf_counter()
        image = image_msg_to_rgb(msg)
        decode_raw.append(time.perf_counter() - start)
        start = time.perf_counter()
        compressed_msg_to_rgb(cmsg)
        decode_jpeg.append(time.perf_counter() - start)
        start = time.perf_counter()
        buffer.add_odometry(stamp, odometry_to_transform(odom))
        buffer.add_frame(Frame(image=image, stamp_ns=stamp, intrinsics=k))
        match.append(time.perf_counter() - start)
    print(f'2. ingest: decode rgb8 640x480:              {_percentiles(decode_raw)}')
    print(f'   ingest: decode JPEG 640x480:              {_percentiles(decode_jpeg)}')
    print(f'   ingest: odometry match + buffer + pairing: {_percentiles(match)} (64-frame buffer)')

    # 3. preparing one request: two frames to JPEG data URLs.
    big = np.ascontiguousarray(np.repeat(np.repeat(rgb, 3, axis=0), 3, axis=1)[:1080, :1920])
    for label, image in (('640x480', rgb), ('1920x1080 -> 960x540', big)):
        times = []
        for _ in range(max(20, repeats // 5)):
            start = time.perf_counter()
            jpeg_data_url(image)
            jpeg_data_url(image)
            times.append(time.perf_counter() - start)
        print(f'3. request preparation, two {label} JPEG data URLs: {_percentiles(times)}')


PUBLISHER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    from nav_msgs.msg import Odometry
    from scipy.spatial.transform import Rotation
    rate, seconds, cameras = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node('bench_publisher')
    topics = ['/camera/image_raw'] + [f'/cam{i}/image_raw' for i in range(1, cameras)]
    image_pubs = [node.create_publisher(Image, topic, QoSProfile(depth=10)) for topic in topics]
    odom_pub = node.create_publisher(Odometry, '/odom', QoSProfile(depth=100))
    while any(p.get_subscription_count() == 0 for p in image_pubs) or odom_pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    msg = Image(height=480, width=640, encoding='rgb8', step=640 * 3)
    msg.data = rgb.tobytes()
    odom = Odometry()
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        stamp = 1_000_000_000 + int(i * 1e9 / rate)
        sec, nsec = divmod(stamp, 1_000_000_000)
        x, y, z, w = Rotation.from_euler('z', i * 2.0, degrees=True).as_quat()
        odom.header.stamp.sec, odom.header.stamp.nanosec = sec, nsec
        odom.pose.pose.orientation.x, odom.pose.pose.orientation.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = z, w
        odom_pub.publish(odom)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        for pub in image_pubs:
            pub.publish(msg)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    achieved = count / (time.perf_counter() - start)
    time.sleep(1.0)
    print(count * cameras, achieved, flush=True)
    node.destroy_node()
    rclpy.shutdown()
""")


def bench_rate(rate: float, seconds: float, env: dict[str, str], cameras: int = 1) -> dict[str, Any]:
    """Publish ``cameras`` image streams at ``rate`` Hz each (plus odometry) into an in-process node."""
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from actial_ros.enums import DropReason
    from actial_ros.nodes.spatial_reasoner import SpatialReasonerNode

    rclpy.init()
    overrides = [Parameter('image_qos', value='reliable'), Parameter('qos_depth', value=50)]
    if cameras > 1:
        overrides.append(Parameter('additional_cameras', value=[f'cam{i}' for i in range(1, cameras)]))
    node = SpatialReasonerNode(parameter_overrides=overrides)
    durations: list[float] = []
    original = node._submit

    def timed(camera_id: str, msg: Any, decode: Any) -> None:
        start = time.perf_counter()
        original(camera_id, msg, decode)
        durations.append(time.perf_counter() - start)

    node._submit = timed  # type: ignore[method-assign]  # the subscriptions look it up per message
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(0.05)

    spinner = threading.Thread(target=spin)
    spinner.start()
    proc = subprocess.run(
        [sys.executable, '-c', PUBLISHER, str(rate), str(seconds), str(cameras)],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds * 4 + 60,
    )
    sent, achieved = proc.stdout.split()
    deadline = time.monotonic() + 10
    while not node.engine.idle() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    spinner.join()
    stats = node.engine.stats()
    node.destroy_node()
    rclpy.shutdown()
    period = 1.0 / (rate * cameras)
    return {
        'rate': rate,
        'achieved': float(achieved),
        'sent': int(sent),
        'received': len(durations),
        'posed': stats.frames_posed,
        'queue_drops': stats.drops.get(DropReason.INGEST_QUEUE_FULL.value, 0),
        'slow_callbacks': sum(d > period for d in durations),
        'callback_p95_ms': 1e3 * float(np.percentile(durations, 95)) if durations else float('nan'),
        'callback_max_ms': 1e3 * max(durations) if durations else float('nan'),
        'pairs': stats.pairs_made,
    }


def _report(result: dict[str, Any], cameras: int) -> bool:
    ok = (
        result['queue_drops'] == 0
        and result['slow_callbacks'] == 0
        and result['received'] == result['sent'] == result['posed']
    )
    print(
        f'   {cameras} x {result["rate"]:4.0f} Hz asked, {result["achieved"]:6.1f} Hz published: received '
        f'{result["received"]}/{result["sent"]}, posed {result["posed"]}, ingest-queue drops {result["queue_drops"]}, '
        f'callbacks longer than the period {result["slow_callbacks"]}, callback p95 {result["callback_p95_ms"]:.3f} ms '
        f'max {result["callback_max_ms"]:.3f} ms, pairs {result["pairs"]} -> {"OK" if ok else "NOT sustained"}'
    )
    return bool(ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=4.0)
    parser.add_argument('--rates', default='15,30,60,120,240')
    parser.add_argument('--cameras', type=int, default=3, help='cameras for the multi-camera ingest figure')
    parser.add_argument('--camera-rate', type=float, default=30.0, help='Hz per camera for that figure')
    args = parser.parse_args()
    env = local_ros_environment(domain_id=90 + os.getpid() % 10)
    os.environ.update(env)
    print(f'machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}')
    bench_costs()
    print('4. sustained rate over DDS (640x480 rgb8, reliable QoS, geometry backend answering pairs):')
    best = 0.0
    for rate in (float(r) for r in args.rates.split(',')):
        if _report(bench_rate(rate, args.seconds, env), 1):
            best = max(best, rate)
    print(f'highest sustained rate with zero blocked callbacks: {best:.1f} Hz')
    print(f'5. {args.cameras} cameras at {args.camera_rate:g} Hz each (cross-camera pairs on):')
    _report(bench_rate(args.camera_rate, args.seconds, env, cameras=args.cameras), args.cameras)


if __name__ == '__main__':
    main()

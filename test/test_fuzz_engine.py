"""Property-based fuzz of the ROS-free engine: arbitrary Image, CompressedImage, CameraInfo, Odometry and
ask payloads, fed exactly as the ``spatial_reasoner`` node feeds them (stamp -> conversion -> engine),
never raise out of a callback's work and never reach the engine's last-resort handler
(``internal_error``): every bad input is a counted drop or an error reply, and the engine keeps pairing.

Messages are duck-typed stand-ins (``SimpleNamespace``) with the field types ROS messages carry (ints
of the field's width, any float including NaN and inf, any string, any bytes), which is what the
conversion functions in :mod:`actial_ros.imaging` and :mod:`actial_ros.message_fields` read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actial_ros.ask import AskRequestError, parse_ask_request
from actial_ros.backends import create_backend
from actial_ros.enums import DropReason
from actial_ros.errors import ActialError
from actial_ros.frame import CameraIntrinsics
from actial_ros.imaging import IMAGE_ENCODINGS, compressed_msg_to_rgb, encode_jpeg, image_msg_to_rgb
from actial_ros.message_fields import camera_info_to_intrinsics, odometry_to_transform, stamp_to_ns
from actial_ros.pairing import PairPolicy
from actial_ros.reasoner import ReasonerConfig, SpatialReasoner

INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
SMALL = st.integers(0, 12)


def stamp(sec: int, nanosec: int) -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id='camera')


STAMPS = st.one_of(
    st.builds(stamp, st.integers(99, 102), st.integers(0, 999_999_999)),  # near the valid stream
    st.builds(stamp, INT32, UINT32),  # anything a Time message can hold
)


@st.composite
def images(draw: st.DrawFn) -> SimpleNamespace:
    """sensor_msgs/Image: usually self-consistent and small, then any field may be broken."""
    encoding = draw(st.one_of(st.sampled_from(IMAGE_ENCODINGS), st.text(max_size=12)))
    height, width = draw(SMALL), draw(SMALL)
    step = draw(st.one_of(st.just(width * 6), SMALL, UINT32))
    size = draw(st.one_of(st.just(height * width * 6), st.integers(0, 1200)))
    data = draw(st.one_of(st.binary(min_size=min(size, 1200), max_size=min(size, 1200)), st.just(b'')))
    return SimpleNamespace(
        header=draw(STAMPS),
        height=draw(st.one_of(st.just(height), UINT32)),
        width=width,
        encoding=encoding,
        is_bigendian=draw(st.integers(0, 255)),
        step=step,
        data=data,
    )


_JPEG = encode_jpeg(np.full((16, 16, 3), 90, dtype=np.uint8))


@st.composite
def compressed_images(draw: st.DrawFn) -> SimpleNamespace:
    """sensor_msgs/CompressedImage: a real JPEG, cut or with bytes flipped, or arbitrary bytes."""
    data = bytearray(_JPEG)
    cut = draw(st.integers(0, len(data)))
    data = data[:cut]
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    payload = draw(st.one_of(st.just(bytes(data)), st.binary(max_size=300)))
    return SimpleNamespace(header=draw(STAMPS), format=draw(st.text(max_size=30)), data=payload)


CAMERA_INFOS = st.builds(
    SimpleNamespace,
    header=STAMPS,
    width=st.one_of(SMALL, UINT32),
    height=st.one_of(SMALL, UINT32),
    k=st.one_of(st.lists(FLOATS, min_size=9, max_size=9), st.lists(FLOATS, max_size=12)),
)


def odometry(header: SimpleNamespace, position: list[float], orientation: list[float]) -> SimpleNamespace:
    x, y, z = position
    qx, qy, qz, qw = orientation
    pose = SimpleNamespace(position=SimpleNamespace(x=x, y=y, z=z), orientation=SimpleNamespace(x=qx, y=qy, z=qz, w=qw))
    return SimpleNamespace(header=header, pose=SimpleNamespace(pose=pose))


ODOMETRY = st.builds(
    odometry,
    STAMPS,
    st.lists(FLOATS, min_size=3, max_size=3),
    st.one_of(st.just([0.0, 0.0, 0.0, 1.0]), st.lists(FLOATS, min_size=4, max_size=4)),
)
ASKS = st.one_of(
    st.text(max_size=100),
    st.integers(0, 5000).map(lambda n: '[' * n + '{"question": "q"}' + ']' * n),
    st.just('{"id": "ok", "question": "What is ahead?", "target": "frame"}'),
)
MESSAGES = st.lists(
    st.one_of(
        st.tuples(st.just('image'), images()),
        st.tuples(st.just('compressed'), compressed_images()),
        st.tuples(st.just('camera_info'), CAMERA_INFOS),
        st.tuples(st.just('odometry'), ODOMETRY),
        st.tuples(st.just('ask'), ASKS),
    ),
    max_size=12,
)


class NodeLikeFeeder:
    """What the node's callbacks do with each message, minus rclpy (spatial_reasoner.py)."""

    def __init__(self, engine: SpatialReasoner) -> None:
        self.engine = engine
        self.intrinsics: CameraIntrinsics | None = None
        self.bad_asks = 0

    def feed(self, kind: str, msg: Any) -> None:
        engine = self.engine
        if kind == 'ask':
            try:
                request = parse_ask_request(msg)
            except AskRequestError:
                self.bad_asks += 1
                return
            engine.submit_ask(ask_id=request.ask_id, prompt=request.question, target=request.target)
            return
        if kind == 'camera_info':
            try:
                self.intrinsics = camera_info_to_intrinsics(msg)
            except ActialError:
                engine.count_drop(DropReason.BAD_CAMERA_INFO)
            return
        try:
            stamp_ns = stamp_to_ns(msg.header.stamp)
        except ValueError:
            engine.count_drop(DropReason.BAD_ODOMETRY if kind == 'odometry' else DropReason.BAD_IMAGE)
            return
        if kind == 'odometry':
            engine.submit_odometry(stamp_ns=stamp_ns, decode=lambda: odometry_to_transform(msg))
            return
        decode = compressed_msg_to_rgb if kind == 'compressed' else image_msg_to_rgb
        engine.submit_image(
            camera_id='camera', stamp_ns=stamp_ns, decode=lambda: decode(msg), intrinsics=self.intrinsics
        )


@pytest.fixture(scope='module')
def engine() -> Iterator[SpatialReasoner]:
    config = ReasonerConfig(pair_policy=PairPolicy(min_yaw_deg=20.0, min_pair_interval_s=0.0), max_request_age_s=60.0)
    reasoner = SpatialReasoner(backend=create_backend('geometry'), config=config, on_answer=lambda record: None)
    reasoner.start()
    yield reasoner
    reasoner.stop()


def wait_idle(engine: SpatialReasoner, timeout_s: float = 30.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if engine.idle():
            return
        event.wait(0.01)
    pytest.fail('the engine did not become idle')


@settings(max_examples=150)
@given(MESSAGES)
def test_no_message_reaches_the_last_resort_handler(engine: SpatialReasoner, messages: list[tuple[str, Any]]) -> None:
    feeder = NodeLikeFeeder(engine)
    for kind, msg in messages:
        feeder.feed(kind, msg)  # raises nothing: the node's callbacks would not need their guard
    wait_idle(engine)
    assert DropReason.INTERNAL_ERROR.value not in engine.drops()
    assert all(thread.is_alive() for thread in engine._threads)


def test_the_engine_still_pairs_after_the_fuzz(engine: SpatialReasoner) -> None:
    """Runs after the fuzz on the same engine: a valid turning stream still makes pairs."""
    engine.buffer.reset()
    before = engine.buffer.pairs_made
    feeder = NodeLikeFeeder(engine)
    feeder.feed('camera_info', SimpleNamespace(width=32, height=24, k=[20.0, 0, 16, 0, 20.0, 12, 0, 0, 1]))
    base = 5000
    for k in range(30):
        yaw = math.radians(5.0 * k)
        feeder.feed(
            'odometry',
            odometry(stamp(base + k, 0), [0.0, 0.0, 0.0], [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]),
        )
        feeder.feed(
            'image',
            SimpleNamespace(
                header=stamp(base + k, 0),
                height=24,
                width=32,
                encoding='rgb8',
                is_bigendian=0,
                step=96,
                data=bytes(24 * 96),
            ),
        )
    wait_idle(engine)
    assert engine.buffer.pairs_made > before
    assert DropReason.INTERNAL_ERROR.value not in engine.drops()

"""Frame buffer, odometry matching and pair policy (actial_ros.pairing), without ROS."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.transform import Rotation

from actial_ros.enums import DropReason, QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError
from actial_ros.frame import Frame
from actial_ros.geometry import base_to_optical_extrinsic, invert_transform, viewpoint_label
from actial_ros.pairing import BufferLimits, OdometryMatchPolicy, PairingBuffer, PairPolicy, PairStrategy

S = 1_000_000_000
IMAGE = np.zeros((8, 8, 3), np.uint8)


def base_pose(x: float, y: float, yaw_deg: float) -> npt.NDArray[np.float64]:
    """Planar robot pose in odom: position (x, y, 0), heading yaw about +z (REP 103, CCW = left)."""
    t = np.eye(4)
    t[:3, :3] = Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix()
    t[:3, 3] = (x, y, 0.0)
    return t


def frame(stamp_ns: int, camera: str = 'camera') -> Frame:
    return Frame(image=IMAGE, stamp_ns=stamp_ns, camera_id=camera)


def test_pose_is_interpolated_between_odometry_samples() -> None:
    buf = PairingBuffer()
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_odometry(S // 5, base_pose(1.0, 0, 20))
    buf.add_frame(frame(S // 10))
    posed = buf.latest_frame()
    assert posed is not None and posed.t_world_camera is not None
    # Camera pose = base pose at the midpoint (x = 0.5, yaw 10 deg) composed with the extrinsic.
    expected = base_pose(0.5, 0, 10) @ base_to_optical_extrinsic()
    np.testing.assert_allclose(posed.t_world_camera, expected, atol=1e-9)


def test_image_waits_for_later_odometry_and_is_then_posed() -> None:
    buf = PairingBuffer()
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_frame(frame(S // 10))
    assert buf.counts()['pending'] == 1 and buf.latest_frame() is None
    buf.add_odometry(S // 5, base_pose(0, 0, 0))
    assert buf.counts()['pending'] == 0 and buf.latest_frame() is not None


def test_odometry_gap_is_not_interpolated_and_is_counted() -> None:
    buf = PairingBuffer(
        match_policy=OdometryMatchPolicy(max_interpolation_gap_s=0.5, max_extrapolation_s=0.05, time_reset_s=10.0)
    )
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_odometry(2 * S, base_pose(1, 0, 0))
    buf.add_frame(frame(S))
    assert buf.drops.snapshot() == {DropReason.ODOMETRY_GAP.value: 1}
    # Close to a sample (within max_extrapolation_s), the sample's pose is held.
    buf.add_frame(frame(2 * S - S // 100))
    assert buf.latest_frame() is not None


def test_image_before_odometry_history_is_dropped() -> None:
    buf = PairingBuffer()
    buf.add_odometry(10 * S, base_pose(0, 0, 0))
    buf.add_frame(frame(9 * S))
    assert buf.drops.snapshot() == {DropReason.NO_ODOMETRY.value: 1}


def test_pending_image_times_out_when_odometry_stops() -> None:
    buf = PairingBuffer(
        match_policy=OdometryMatchPolicy(pending_timeout_s=1.0, max_extrapolation_s=0.05, time_reset_s=10.0)
    )
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_frame(frame(S // 2))
    buf.add_frame(frame(2 * S))  # 1.5 s newer: the first one gives up
    assert buf.drops.snapshot().get(DropReason.ODOMETRY_TIMEOUT.value) == 1
    assert buf.counts()['pending'] == 1


def test_bad_duplicate_and_out_of_order_odometry() -> None:
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(history=2, time_reset_s=10.0))
    nan_pose = base_pose(0, 0, 0)
    nan_pose[0, 3] = math.nan
    assert buf.add_odometry(0, nan_pose) == []
    buf.add_odometry(S, base_pose(0, 0, 0))
    buf.add_odometry(S, base_pose(0, 0, 0))
    buf.add_odometry(2 * S, base_pose(0, 0, 0))
    buf.add_odometry(S // 2, base_pose(0, 0, 0))  # older than the (full) history
    drops = buf.drops.snapshot()
    assert drops == {
        DropReason.BAD_ODOMETRY.value: 1,
        DropReason.ODOMETRY_DUPLICATE.value: 1,
        DropReason.ODOMETRY_OUT_OF_ORDER.value: 1,
    }


def test_slightly_out_of_order_odometry_is_inserted() -> None:
    buf = PairingBuffer()
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_odometry(2 * S // 10, base_pose(2, 0, 0))
    buf.add_odometry(S // 10, base_pose(1, 0, 0))
    assert buf.drops.total == 0
    buf.add_frame(frame(S // 20))
    posed = buf.latest_frame()
    assert posed is not None and posed.t_world_camera is not None
    assert posed.t_world_camera[0, 3] == pytest.approx(0.5)


def test_time_jumping_backwards_resets_the_buffers() -> None:
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(time_reset_s=1.0))
    for i in range(5):
        buf.add_odometry(100 * S + i * S // 10, base_pose(0, 0, 0))
        buf.add_frame(frame(100 * S + i * S // 10))
    assert buf.counts()['frames'] == 5
    # Simulation restarted: the first two messages of the new timeline are held (they could be outliers) ...
    buf.add_odometry(S, base_pose(0, 0, 0))
    buf.add_odometry(S + S // 10, base_pose(0, 0, 0))
    assert buf.drops.total == 0 and buf.counts()['frames'] == 5
    # ... the third confirms the reset: the old timeline goes, the three samples are kept.
    buf.add_odometry(S + S // 5, base_pose(0, 0, 0))
    assert buf.drops.snapshot() == {DropReason.TIME_RESET.value: 1}
    assert buf.counts() == {'frames': 0, 'pending': 0, 'bytes': 0, 'odometry': 3}
    buf.add_frame(frame(S))
    assert buf.counts()['frames'] == 1


def test_one_confirmation_resets_at_the_first_jump() -> None:
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(time_reset_s=1.0, time_jump_confirmations=1))
    buf.add_odometry(100 * S, base_pose(0, 0, 0))
    buf.add_frame(frame(100 * S))
    buf.add_odometry(S, base_pose(0, 0, 0))
    assert buf.drops.snapshot() == {DropReason.TIME_RESET.value: 1}
    assert buf.counts() == {'frames': 0, 'pending': 0, 'bytes': 0, 'odometry': 1}


def valid_stream(buf: PairingBuffer, start: int, count: int, *, bogus: dict[int, int] | None = None) -> None:
    """Odometry and an image every 0.1 s from ``start``; ``bogus``: step -> (odometry or image) stamp instead."""
    for i in range(count):
        stamp = start + i * S // 10
        odometry_stamp = (bogus or {}).get(2 * i, stamp)
        image_stamp = (bogus or {}).get(2 * i + 1, stamp)
        buf.add_odometry(odometry_stamp, base_pose(0, 0, 0))
        buf.add_frame(frame(image_stamp))


@pytest.mark.parametrize(
    ('where', 'offset_s'),
    [('odometry', -5.0), ('odometry', +5.0), ('image', -5.0), ('image', +5.0)],
)
def test_one_bogus_stamp_in_a_valid_stream_loses_no_valid_frame(where: str, offset_s: float) -> None:
    """Issue 11: ONE odometry message stamped 5 s in the past reset the timeline and cost 20 of 40 frames."""
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(time_reset_s=1.0), limits=BufferLimits(max_frames=100))
    step = 20  # the 11th sample
    bogus_index = 2 * step if where == 'odometry' else 2 * step + 1
    bogus_stamp = 100 * S + step * S // 10 + int(offset_s * S)
    valid_stream(buf, 100 * S, 40, bogus={bogus_index: bogus_stamp})
    valid_stream(buf, 104 * S, 1)  # odometry after the last image, so that every image is bracketed
    drops = buf.drops.snapshot()
    assert drops == {DropReason.TIME_OUTLIER.value: 1}, drops
    posed = 39 if where == 'image' else 40
    assert buf.frames_posed == posed + 1


def test_camera_suspects_held_during_a_reset_are_replayed() -> None:
    """The images of the new timeline that arrive before odometry confirms the reset are not lost."""
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(time_reset_s=1.0))
    valid_stream(buf, 100 * S, 5)
    restart = 5 * S
    for i in range(3):  # images first: held by the camera's guard
        buf.add_frame(frame(restart + i * S // 10))
    for i in range(4):  # then odometry: its third sample confirms the reset
        buf.add_odometry(restart + i * S // 10, base_pose(0, 0, 0))
    assert buf.drops.snapshot() == {DropReason.TIME_RESET.value: 1}
    assert buf.counts()['frames'] == 3 and buf.counts()['pending'] == 0


def test_duplicate_frames_are_dropped() -> None:
    buf = PairingBuffer()
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_frame(frame(0))
    buf.add_frame(frame(0))
    assert buf.drops.snapshot() == {DropReason.DUPLICATE_FRAME.value: 1}


def spin_in_place(buf: PairingBuffer, steps: int, deg_per_step: float, dt_ns: int = S // 10) -> list[object]:
    pairs: list[object] = []
    for i in range(steps):
        buf.add_odometry(i * dt_ns, base_pose(0, 0, i * deg_per_step))
        pairs += buf.add_frame(frame(i * dt_ns))
    return pairs


def test_pairs_respect_yaw_range_and_labels_follow_odometry() -> None:
    buf = PairingBuffer(pair_policy=PairPolicy(min_yaw_deg=20, max_yaw_deg=40, max_frame_uses=100))
    pairs = spin_in_place(buf, 30, 5.0)  # robot turning left (CCW) 5 deg per frame
    assert pairs
    for pair in pairs:
        assert pair.relative is not None  # type: ignore[attr-defined]
        yaw = pair.relative.yaw_deg  # type: ignore[attr-defined]
        assert 20 - 1e-9 <= abs(yaw) <= 40 + 1e-9
        assert pair.frame_1.stamp_ns < pair.frame_2.stamp_ns  # type: ignore[attr-defined]
        # Turning left in odom (CCW from above) is a camera turning LEFT: negative yaw.
        assert yaw < 0
        assert viewpoint_label(QuestionType.ROTATION, pair.relative) is ViewpointLabel.LEFT  # type: ignore[attr-defined]


def test_frame_use_limit_and_min_interval() -> None:
    buf = PairingBuffer(
        pair_policy=PairPolicy(min_yaw_deg=0, max_yaw_deg=180, max_frame_uses=1, strategy=PairStrategy.NEWEST)
    )
    pairs = spin_in_place(buf, 10, 1.0)
    stamps = [p.frame_1.stamp_ns for p in pairs] + [p.frame_2.stamp_ns for p in pairs]  # type: ignore[attr-defined]
    assert len(stamps) == len(set(stamps))  # no frame in two pairs
    buf2 = PairingBuffer(pair_policy=PairPolicy(min_yaw_deg=0, max_yaw_deg=180, min_pair_interval_s=0.5))
    pairs2 = spin_in_place(buf2, 20, 1.0)  # 2 s of frames at 10 Hz
    gaps = np.diff([p.frame_2.stamp_ns for p in pairs2])  # type: ignore[attr-defined]
    assert len(pairs2) >= 3 and (gaps >= S // 2).all()


def test_max_pair_span_limits_freshness() -> None:
    buf = PairingBuffer(pair_policy=PairPolicy(min_yaw_deg=20, max_yaw_deg=100, max_pair_span_s=0.25))
    assert spin_in_place(buf, 30, 5.0) == []  # 20 deg needs 4 frames = 0.4 s > 0.25 s


def test_buffer_bounds_by_count_and_bytes() -> None:
    buf = PairingBuffer(limits=BufferLimits(max_frames=5, max_bytes=10**9))
    spin_in_place(buf, 12, 0.0)
    assert buf.counts()['frames'] == 5 and buf.frames_evicted == 7
    per_frame = IMAGE.nbytes
    buf2 = PairingBuffer(limits=BufferLimits(max_frames=100, max_bytes=3 * per_frame))
    spin_in_place(buf2, 12, 0.0)
    assert buf2.counts()['frames'] == 3 and buf2.counts()['bytes'] == 3 * per_frame


def test_random_strategy_is_deterministic_for_a_seed() -> None:
    def ids(seed: int) -> list[tuple[int, int]]:
        buf = PairingBuffer(pair_policy=PairPolicy(seed=seed, max_frame_uses=100))
        return [(p.frame_1.stamp_ns, p.frame_2.stamp_ns) for p in spin_in_place(buf, 40, 3.0)]  # type: ignore[attr-defined]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)


def test_per_camera_extrinsic_is_applied() -> None:
    # A camera looking left (mounted yawed +90 deg about base z): optical axis = base +y.
    left = np.eye(4)
    left[:3, :3] = Rotation.from_euler('z', 90, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    buf = PairingBuffer(extrinsics={'left': left})
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_frame(frame(0, camera='left'))
    posed = buf.latest_frame('left')
    assert posed is not None and posed.t_world_camera is not None
    np.testing.assert_allclose(posed.t_world_camera[:3, 2], (0.0, 1.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(invert_transform(posed.t_world_camera) @ posed.t_world_camera, np.eye(4), atol=1e-12)


def test_invalid_policies_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        PairPolicy(min_yaw_deg=50, max_yaw_deg=20)
    with pytest.raises(ConfigError):
        PairPolicy(max_frame_uses=0)
    with pytest.raises(ConfigError):
        OdometryMatchPolicy(max_interpolation_gap_s=-1)
    with pytest.raises(ConfigError):
        BufferLimits(max_frames=1)


def test_synchronised_cameras_pair_across_cameras_at_the_same_stamp() -> None:
    # Front camera and a camera turned 60 deg left on the same base: at one stamp their relative yaw
    # is the mounting difference, -60 deg (camera 2 = left is turned LEFT of camera 1 = front).
    left = np.eye(4)
    left[:3, :3] = Rotation.from_euler('z', 60, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    buf = PairingBuffer(extrinsics={'front': base_to_optical_extrinsic(), 'left': left})
    buf.add_odometry(0, base_pose(0, 0, 0))
    assert buf.add_frame(frame(0, camera='front')) == []
    (pair,) = buf.add_frame(frame(0, camera='left'))
    assert (pair.frame_1.camera_id, pair.frame_2.camera_id) == ('front', 'left')
    assert pair.relative is not None and pair.relative.yaw_deg == pytest.approx(-60.0)
    assert viewpoint_label(QuestionType.ROTATION, pair.relative) is ViewpointLabel.LEFT
    stats = buf.camera_stats()
    assert stats['left'].pairs == 1 and stats['front'].posed == 1


def test_cross_camera_pairs_can_be_disabled() -> None:
    left = np.eye(4)
    left[:3, :3] = Rotation.from_euler('z', 60, degrees=True).as_matrix() @ base_to_optical_extrinsic()[:3, :3]
    buf = PairingBuffer(extrinsics={'left': left}, pair_policy=PairPolicy(cross_camera=False))
    buf.add_odometry(0, base_pose(0, 0, 0))
    buf.add_frame(frame(0, camera='front'))
    assert buf.add_frame(frame(0, camera='left')) == []


def test_late_messages_of_the_old_timeline_do_not_reset_again() -> None:
    buf = PairingBuffer(match_policy=OdometryMatchPolicy(time_reset_s=1.0))
    buf.add_odometry(100 * S, base_pose(0, 0, 0))
    buf.add_odometry(5 * S, base_pose(0, 0, 0))  # simulation restarted at t = 5 s
    buf.add_odometry(5 * S + S // 10, base_pose(0, 0, 0))
    buf.add_odometry(5 * S + S // 5, base_pose(0, 0, 0))  # the third confirms the reset
    buf.add_frame(frame(105 * S))  # an image of the old run, still in flight on the image topic
    buf.add_frame(frame(5 * S + S // 20))
    assert buf.drops.snapshot() == {DropReason.TIME_RESET.value: 1, DropReason.OLD_TIMELINE.value: 1}
    assert buf.latest_frame() is not None and buf.counts()['odometry'] == 3

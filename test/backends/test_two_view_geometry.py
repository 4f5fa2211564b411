"""GeometryBackend: pose conversion against OpenCV's convention, and answers on the real shared capture.

The capture is read here directly (LLFF layout, CONVENTIONS.md) so this test does not depend on
``actial_ros.sources``: rotation columns (down, right, back) -> OpenCV camera-to-world ``[c1, c0, -c2]``,
column 3 the centre, column 4 ``(H, W, focal)`` of the ORIGINAL 4000x4000 photos.

Beware: that capture was taken with the object on a turntable in a room. Its poses are relative to the
OBJECT (masked structure-from-motion), but the room behind it hardly moves between photos. Far-apart
pairs (20-100 degrees) therefore mostly match the background, which gives a near-identity pose: the
baseline abstains on 86 % of them and its rotation answers are wrong where it answers. Only close pairs
are asserted here.
"""

from __future__ import annotations

import json
import math
import random
import threading
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from captures import SAMPLE_CAPTURE, SHARED_CAPTURE
from scipy.spatial.transform import Rotation

from actial_ros.backends import GeometryBackend, create_backend, relative_pose_from_recover_pose
from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics, Frame, Pair
from actial_ros.geometry import LabelThresholds, relative_pose, viewpoint_label
from actial_ros.questions import Question, make_question

_TRUTH_THRESHOLDS = LabelThresholds(translation_m=0.0, yaw_deg=2.0)


def _load_capture(root: Path) -> list[Frame]:
    names = sorted(p.name for p in (root / 'images').iterdir() if p.suffix.lower() in ('.jpg', '.jpeg', '.png'))
    rows = np.load(root / 'poses_bounds.npy')
    assert rows.shape == (len(names), 17)
    frames = []
    for index, name in enumerate(names):
        bgr = cv2.imread(str(root / 'images' / name), cv2.IMREAD_COLOR)
        assert bgr is not None, name
        image = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        matrix = rows[index, :15].reshape(3, 5)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([matrix[:, 1], matrix[:, 0], -matrix[:, 2]], axis=1)
        pose[:3, 3] = matrix[:, 3]
        height, width = image.shape[:2]
        focal = float(matrix[2, 4]) * width / float(matrix[1, 4])
        intrinsics = CameraIntrinsics(fx=focal, fy=focal, cx=width / 2, cy=height / 2, width=width, height=height)
        frames.append(Frame(image=image, stamp_ns=index * 10**9, intrinsics=intrinsics, t_world_camera=pose, name=name))
    return frames


@pytest.fixture(scope='module')
def capture() -> list[Frame]:
    """The shared 66-image capture, or the bundled 24-image subset when the shared one is absent."""
    root = SHARED_CAPTURE if (SHARED_CAPTURE / 'poses_bounds.npy').is_file() else SAMPLE_CAPTURE
    if not (root / 'poses_bounds.npy').is_file():
        pytest.skip('no LLFF capture available')
    return _load_capture(root)


def _pairs_in_range(frames: list[Frame], low: float, high: float, limit: int) -> list[tuple[int, int]]:
    chosen = []
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            pose_i, pose_j = frames[i].t_world_camera, frames[j].t_world_camera
            assert pose_i is not None and pose_j is not None
            yaw = relative_pose(pose_i, pose_j).abs_yaw_deg
            if low <= yaw <= high:
                chosen.append((i, j))
    random.Random(7).shuffle(chosen)
    return chosen[:limit]


def _pair(frames: list[Frame], i: int, j: int, pair_id: int) -> Pair:
    a, b = frames[i], frames[j]
    assert a.t_world_camera is not None and b.t_world_camera is not None
    return Pair(a, b, relative_pose(a.t_world_camera, b.t_world_camera), pair_id=pair_id)


def _score(
    backend: GeometryBackend,
    frames: list[Frame],
    pairs: list[tuple[int, int]],
    kinds: tuple[QuestionType, ...],
) -> dict[QuestionType, tuple[int, int, int]]:
    """(correct, answered, asked) per question type."""
    rng = random.Random(3)
    counts = {kind: [0, 0, 0] for kind in kinds}
    for pair_id, (i, j) in enumerate(pairs):
        pair = _pair(frames, i, j, pair_id)
        assert pair.relative is not None
        for kind in kinds:
            question = make_question(kind, viewpoint_label(kind, pair.relative, _TRUTH_THRESHOLDS), rng)
            answer = backend.answer(pair, question)
            counts[kind][2] += 1
            if answer.letter is not None:
                assert not answer.abstained
                counts[kind][1] += 1
                counts[kind][0] += int(answer.letter == question.answer_letter)
            else:
                assert answer.abstained and answer.reason
    return {kind: (c[0], c[1], c[2]) for kind, c in counts.items()}


# ---------------------------------------------------------------------------- pose conversion


def _camera_pose(yaw_deg: float, centre: tuple[float, float, float], pitch_deg: float = 0.0) -> npt.NDArray[np.float64]:
    """Camera-to-world pose, world = camera 1's optical frame: yaw about +y (down), pitch about x."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler('YX', [yaw_deg, pitch_deg], degrees=True).as_matrix()
    pose[:3, 3] = centre
    return pose


@pytest.mark.parametrize(
    ('yaw_deg', 'centre', 'expected_rotation', 'expected_ego'),
    [
        (-30.0, (1.0, 0.0, 0.3), ViewpointLabel.LEFT, ViewpointLabel.RIGHT),  # orbit: move right, turn left
        (25.0, (-2.0, 0.1, 0.5), ViewpointLabel.RIGHT, ViewpointLabel.LEFT),  # orbit the other way
        (0.5, (0.02, 0.0, 1.0), ViewpointLabel.NONE, ViewpointLabel.NONE),  # forward motion, tiny turn
    ],
)
def test_conversion_of_recover_pose_output(
    yaw_deg: float,
    centre: tuple[float, float, float],
    expected_rotation: ViewpointLabel,
    expected_ego: ViewpointLabel,
) -> None:
    truth = relative_pose(np.eye(4), _camera_pose(yaw_deg, centre))
    # What recoverPose returns for this motion: x2 = R x1 + t, with an arbitrary positive scale on t.
    r = truth.rotation.T
    t = -truth.rotation.T @ truth.translation * 3.7
    pose = relative_pose_from_recover_pose(r, t.reshape(3, 1))
    assert pose.yaw_deg == pytest.approx(yaw_deg, abs=1e-9)
    assert np.linalg.norm(pose.translation) == pytest.approx(1.0)
    np.testing.assert_allclose(pose.translation, truth.translation / np.linalg.norm(truth.translation), atol=1e-12)
    thresholds = LabelThresholds(translation_m=0.1, yaw_deg=2.0)
    assert viewpoint_label(QuestionType.ROTATION, pose, thresholds) is expected_rotation
    assert viewpoint_label(QuestionType.EGO_TRANSLATION, pose, thresholds) is expected_ego


@pytest.mark.parametrize(('yaw_deg', 'tx'), [(-20.0, 1.0), (15.0, -1.0), (-8.0, -0.5)])
def test_conversion_matches_opencv_on_synthetic_points(yaw_deg: float, tx: float) -> None:
    """Project random 3D points into two cameras, run OpenCV, and compare with the ground truth pose."""
    rng = np.random.default_rng(0)
    points = rng.uniform([-2.0, -2.0, 6.0], [2.0, 2.0, 10.0], size=(200, 3))  # in camera 1 = world
    t_world_2 = _camera_pose(yaw_deg, (tx, 0.2, 0.4), pitch_deg=3.0)
    truth = relative_pose(np.eye(4), t_world_2)
    k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    # World-to-camera-2: x2 = R2^T (X - C2).
    r_2w = t_world_2[:3, :3].T
    rvec, _ = cv2.Rodrigues(r_2w)
    tvec = -r_2w @ t_world_2[:3, 3]
    pix_1, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), k, None)
    pix_2, _ = cv2.projectPoints(points, rvec, tvec, k, None)
    essential, mask = cv2.findEssentialMat(pix_1, pix_2, k, method=cv2.RANSAC, prob=0.999, threshold=0.5)
    _, r, t, _ = cv2.recoverPose(essential, pix_1, pix_2, k, mask=mask)
    pose = relative_pose_from_recover_pose(r, t)
    assert pose.yaw_deg == pytest.approx(truth.yaw_deg, abs=0.05)
    np.testing.assert_allclose(pose.translation, truth.translation / np.linalg.norm(truth.translation), atol=1e-3)


# ---------------------------------------------------------------------------- real capture


def test_answers_agree_with_ground_truth_on_close_pairs(capture: list[Frame]) -> None:
    """Pairs 3-8 degrees apart: on all 79 such pairs of the shared capture, 94 % answered and 100 % / 99 %
    of those correct (translation / rotation); the bounds below leave room for other OpenCV versions."""
    backend = GeometryBackend()
    pairs = _pairs_in_range(capture, 3.0, 8.0, 24)
    assert len(pairs) >= 10
    kinds = (QuestionType.EGO_TRANSLATION, QuestionType.OBJECT_TRANSLATION, QuestionType.ROTATION)
    scores = _score(backend, capture, pairs, kinds)
    for kind, (correct, answered, asked) in scores.items():
        assert answered >= 0.75 * asked, (kind, scores)
        assert correct >= 0.85 * answered, (kind, scores)
    # One estimate per pair, shared by the three questions.
    assert backend.estimations == len(pairs)


def test_answers_on_15_to_20_degree_pairs(capture: list[Frame]) -> None:
    """On all 80 such pairs of the shared capture: 32 % answered, 96 % / 88 % of those correct
    (translation / rotation)."""
    backend = GeometryBackend()
    pairs = _pairs_in_range(capture, 15.0, 20.0, 24)
    assert len(pairs) >= 10
    scores = _score(backend, capture, pairs, (QuestionType.EGO_TRANSLATION, QuestionType.ROTATION))
    for kind, (correct, answered, asked) in scores.items():
        assert answered >= 0.1 * asked, (kind, scores)
        assert correct >= 0.6 * answered, (kind, scores)


def test_raw_text_is_json_with_the_estimate(capture: list[Frame]) -> None:
    backend = GeometryBackend()
    i, j = _pairs_in_range(capture, 3.0, 8.0, 1)[0]
    pair = _pair(capture, i, j, 1)
    question = make_question(QuestionType.ROTATION, None, random.Random(0))
    answer = backend.answer(pair, question)
    assert answer.backend == 'geometry' and answer.letter is not None
    payload = json.loads(answer.raw_text)
    assert set(payload) >= {'yaw_deg', 't12', 'inliers', 'matches', 'label'}
    assert math.isclose(float(np.linalg.norm(payload['t12'])), 1.0, abs_tol=1e-3)
    assert payload['inliers'] >= 30
    assert question.label_for_letter(answer.letter) == ViewpointLabel(payload['label'])


@pytest.mark.parametrize('kind', ['blank', 'noise'])
def test_abstains_on_a_featureless_or_noise_image(capture: list[Frame], kind: str) -> None:
    frame = capture[0]
    if kind == 'blank':
        image = np.full_like(frame.image, 128)
    else:
        image = np.random.default_rng(1).integers(0, 256, size=frame.image.shape, dtype=np.uint8)
    other = Frame(image=image, stamp_ns=5, intrinsics=frame.intrinsics, name=kind)
    backend = GeometryBackend()
    for question_type in QuestionType:
        answer = backend.answer(
            Pair(frame, other, None, pair_id=9), make_question(question_type, None, random.Random(0))
        )
        assert answer.abstained and answer.letter is None
        assert answer.reason is not None and answer.reason.startswith('too few'), answer.reason


def test_abstains_without_intrinsics_or_with_mismatched_aspect(capture: list[Frame]) -> None:
    backend = GeometryBackend()
    question = make_question(QuestionType.ROTATION, None, random.Random(0))
    bare = Frame(image=capture[1].image, stamp_ns=capture[1].stamp_ns)
    answer = backend.answer(Pair(capture[0], bare, None), question)
    assert answer.abstained and answer.reason == 'no intrinsics'
    wrong = CameraIntrinsics(fx=500, fy=500, cx=320, cy=240, width=640, height=480)
    skewed = Frame(image=capture[1].image, stamp_ns=capture[1].stamp_ns, intrinsics=wrong)
    answer = backend.answer(Pair(capture[0], skewed, None, pair_id=2), question)
    assert answer.abstained and answer.reason is not None and 'aspect' in answer.reason


def _resized(frame: Frame, size: int, *, scale_intrinsics: bool) -> Frame:
    assert frame.intrinsics is not None
    image = np.ascontiguousarray(cv2.resize(frame.image, (size, size), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    intrinsics = frame.intrinsics.scaled(size, size) if scale_intrinsics else frame.intrinsics
    return Frame(image=image, stamp_ns=frame.stamp_ns, intrinsics=intrinsics, t_world_camera=frame.t_world_camera)


def test_different_intrinsics_and_large_images(capture: list[Frame]) -> None:
    """Frame 2 at 1280 px (K scaled; downscaled to 960 inside), and frame 2 at 768 px with K still
    for 512 px (rescaled to the image inside): both give the answer of the original pair."""
    pairs = _pairs_in_range(capture, 4.0, 8.0, 6)
    backend = GeometryBackend()
    rng = random.Random(0)
    agree = total = 0
    for pair_id, (i, j) in enumerate(pairs):
        original = _pair(capture, i, j, pair_id)
        assert original.relative is not None
        question = make_question(QuestionType.ROTATION, viewpoint_label('rotation', original.relative), rng)
        reference = backend.answer(original, question)
        if reference.letter != question.answer_letter:
            continue
        for offset, frame_2 in (
            (1000, _resized(capture[j], 1280, scale_intrinsics=True)),
            (2000, _resized(capture[j], 768, scale_intrinsics=False)),
        ):
            answer = backend.answer(Pair(capture[i], frame_2, original.relative, pair_id=offset + pair_id), question)
            total += 1
            agree += int(answer.letter == question.answer_letter)
    assert total >= 8
    assert agree >= 0.75 * total, (agree, total)


def test_cache_is_bounded_and_shared_between_threads(capture: list[Frame]) -> None:
    backend = GeometryBackend(cache_size=2)
    pairs = [_pair(capture, i, i + 1, pair_id=i) for i in range(3)]
    questions = [make_question(kind, None, random.Random(0)) for kind in QuestionType]
    results: list[str | None] = []
    lock = threading.Lock()

    def ask(question: Question) -> None:
        letter = backend.answer(pairs[0], question).letter
        with lock:
            results.append(letter)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and backend.estimations == 1
    backend.answer(pairs[1], questions[0])
    backend.answer(pairs[2], questions[0])
    assert backend.estimations == 3
    backend.answer(pairs[2], questions[1])  # still cached
    assert backend.estimations == 3
    backend.answer(pairs[0], questions[0])  # evicted (LRU of 2)
    assert backend.estimations == 4
    # Same pair_id but a different stamp is a different pair.
    moved = Pair(pairs[0].frame_1, capture[5], None, pair_id=pairs[0].pair_id)
    backend.answer(moved, questions[0])
    assert backend.estimations == 5


def test_orb_fallback_answers_close_pairs(capture: list[Frame]) -> None:
    backend = GeometryBackend(use_sift=False)
    assert backend.detector_name == 'orb'
    pairs = _pairs_in_range(capture, 3.0, 8.0, 15)
    scores = _score(backend, capture, pairs, (QuestionType.EGO_TRANSLATION,))
    correct, answered, asked = scores[QuestionType.EGO_TRANSLATION]
    assert answered >= 0.5 * asked and correct >= 0.8 * answered, scores


def test_free_form_questions_abstain(capture: list[Frame]) -> None:
    answer = GeometryBackend().ask([capture[0], capture[1]], 'What is on the table?')
    assert answer.abstained and answer.letter is None
    assert answer.reason == 'free-form questions need a language model'


def test_factory_and_config_errors() -> None:
    backend = create_backend('geometry', min_inliers=40, translation_threshold=0.2)
    assert isinstance(backend, GeometryBackend) and backend.name == 'geometry'
    assert 'min_inliers=40' in repr(backend)
    with pytest.raises(ConfigError, match='geometry, transformers, vllm'):
        create_backend('colmap')
    with pytest.raises(ConfigError, match='invalid options'):
        create_backend('geometry', no_such_option=1)
    with pytest.raises(ConfigError):
        GeometryBackend(ratio=1.5)
    with pytest.raises(ConfigError):
        GeometryBackend(rotation_threshold_deg=-1.0)
    with pytest.raises(ConfigError, match='ransac_method'):
        GeometryBackend(ransac_method='magic')

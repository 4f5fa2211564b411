"""A classical two-view baseline with no model: features, essential matrix, ``recoverPose``.

Pipeline for one pair (frame 1 -> frame 2):

1. Each image is converted to grayscale and downscaled to at most ``max_image_width`` pixels wide
   (area interpolation); its intrinsics are scaled to the size actually used
   (:meth:`CameraIntrinsics.scaled`), so ``K`` always matches the pixels that are matched.
2. SIFT features (``cv2.SIFT_create``; ORB when SIFT is not built in), 2-nearest-neighbour matching and
   Lowe's ratio test.
3. Matched pixels are undistorted into normalised image coordinates with each frame's own ``K``
   (``cv2.undistortPoints``), so two cameras with different intrinsics work; the essential matrix is
   estimated with RANSAC on those coordinates (identity camera matrix, the pixel threshold divided by
   the mean focal length).
4. ``cv2.recoverPose`` gives ``(R, t)`` with ``x2 = R x1 + t`` (points in camera 1 -> camera 2) and the
   number of inliers in front of both cameras. :func:`relative_pose_from_recover_pose` converts it to
   the CONVENTIONS.md relative pose ``R12 = R^T``, ``t12 = -R^T t`` (unit length: the scale of a
   two-view reconstruction is unknown).
5. Labels come from :func:`actial_ros.geometry.viewpoint_label`: rotation from the sign of yaw with a
   threshold in degrees, translation from the sign of the unit ``t12.x`` with a DIMENSIONLESS threshold.

The backend abstains (``BackendAnswer.abstained``; never an exception) when a frame has no intrinsics,
when intrinsics do not fit the image's aspect ratio, or when there are too few matches or pose inliers.
Known limits: a pure rotation (no baseline) leaves the translation direction undetermined; the pose is
that of whatever dominates the matches, so when the object moved and its background did not (a
turntable capture), the answer describes the background; and real object-centric pairs 20-100 degrees
apart mostly abstain (too few inliers), the gap Viewpoint Learning exists to close
(``../shared/notes/ENVIRONMENT.md``).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from actial_ros.backends.base import Backend, BackendAnswer
from actial_ros.errors import ConfigError
from actial_ros.frame import CameraIntrinsics, Frame, Pair
from actial_ros.geometry import LabelThresholds, RelativePose, relative_pose, viewpoint_label
from actial_ros.questions import Question

__all__ = ['GeometryBackend', 'PoseEstimate', 'relative_pose_from_recover_pose']

FloatArray = npt.NDArray[np.float64]

_ASPECT_TOLERANCE = 0.02
"""Largest relative difference between the intrinsics' and the image's aspect ratio that is rescaled."""


def relative_pose_from_recover_pose(rotation: npt.ArrayLike, translation: npt.ArrayLike) -> RelativePose:
    """Convert ``cv2.recoverPose``'s ``(R, t)`` into the CONVENTIONS.md relative pose (frame 1 -> 2).

    ``recoverPose`` returns the transform of POINTS from camera-1 to camera-2 coordinates,
    ``x2 = R x1 + t``. Camera 2's axes in camera 1's frame are therefore ``R12 = R^T`` and camera 2's
    centre in camera 1's frame is ``t12 = -R^T t``, normalised to unit length (two-view scale is
    unknown). The result is built with :func:`actial_ros.geometry.relative_pose` (camera 1 at the
    identity), so yaw, pitch and roll follow the one shared definition.

    Args:
        rotation: ``(3, 3)`` rotation ``R``.
        translation: ``(3,)`` or ``(3, 1)`` translation ``t`` (any length; a zero vector stays zero).

    Returns:
        :class:`RelativePose` with ``translation`` of unit norm (or zero).

    Raises:
        PoseError: ``R`` is not a rotation or values are not finite.
    """
    r = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    centre = -r.T @ t
    norm = float(np.linalg.norm(centre))
    if norm > 0.0 and math.isfinite(norm):
        centre = centre / norm
    t_world_camera_2 = np.eye(4)
    t_world_camera_2[:3, :3] = r.T
    t_world_camera_2[:3, 3] = centre
    return relative_pose(np.eye(4), t_world_camera_2)


@dataclass(frozen=True, slots=True)
class PoseEstimate:
    """Outcome of the two-view estimation for one pair (cached per pair).

    Attributes:
        pose: relative pose frame 1 -> frame 2 with unit ``t12``, or ``None`` when abstaining.
        matches: matches kept by the ratio test.
        inliers: pose inliers (RANSAC inliers in front of both cameras; 0 when not reached).
        reason: why the estimate abstains, else ``None``.
        elapsed_s: seconds the estimation took.
    """

    pose: RelativePose | None
    matches: int
    inliers: int
    reason: str | None
    elapsed_s: float


_METHODS: dict[str, int] = {
    name: int(getattr(cv2, attr))
    for name, attr in (
        ('ransac', 'RANSAC'),
        ('lmeds', 'LMEDS'),
        ('usac_default', 'USAC_DEFAULT'),
        ('usac_magsac', 'USAC_MAGSAC'),
        ('usac_accurate', 'USAC_ACCURATE'),
    )
    if hasattr(cv2, attr)
}

_CacheKey = tuple[int, int, int, str, str]


class GeometryBackend(Backend):
    """Classical baseline: SIFT + essential matrix + ``recoverPose``; answers without any model.

    Thread-safe: estimates are cached per pair in a small LRU guarded by a lock, and concurrent questions
    about the same pair wait for one estimation instead of repeating it.

    Args:
        min_matches: abstain below this many ratio-test matches (>= 5).
        min_inliers: abstain below this many pose inliers (>= 5).
        ratio: Lowe's ratio-test threshold in (0, 1).
        ransac_threshold_px: RANSAC epipolar distance threshold in pixels of the matched images.
        ransac_confidence: RANSAC confidence in (0, 1).
        ransac_max_iters: RANSAC iteration cap (OpenCV's default of 1000 misses the model when fewer
            than about a third of the matches are inliers).
        ransac_method: ``'ransac'`` (``cv2.RANSAC``), ``'lmeds'``, or a USAC variant ``'usac_default'``,
            ``'usac_magsac'``, ``'usac_accurate'``.
        rotation_threshold_deg: ``|yaw|`` below this is ``none`` (degrees).
        translation_threshold: ``|t12.x|`` of the UNIT translation below this is ``none`` (dimensionless).
        max_image_width: images wider than this (pixels) are downscaled before matching.
        max_features: features detected per image.
        cache_size: pair estimates kept (LRU).
        use_sift: use SIFT when available (ORB otherwise, or when False).

    Raises:
        ConfigError: an out-of-range parameter.
    """

    name = 'geometry'

    def __init__(
        self,
        *,
        min_matches: int = 30,
        min_inliers: int = 30,
        ratio: float = 0.75,
        ransac_threshold_px: float = 1.0,
        ransac_confidence: float = 0.999,
        ransac_max_iters: int = 5000,
        ransac_method: str = 'ransac',
        rotation_threshold_deg: float = 2.0,
        translation_threshold: float = 0.1,
        max_image_width: int = 960,
        max_features: int = 4000,
        cache_size: int = 16,
        use_sift: bool = True,
    ) -> None:
        if min_matches < 5 or min_inliers < 5:
            raise ConfigError(f'min_matches and min_inliers must be >= 5, got {min_matches}, {min_inliers}')
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f'ratio must be in (0, 1), got {ratio}')
        if not (ransac_threshold_px > 0 and math.isfinite(ransac_threshold_px)):
            raise ConfigError(f'ransac_threshold_px must be positive, got {ransac_threshold_px}')
        if not 0.0 < ransac_confidence < 1.0:
            raise ConfigError(f'ransac_confidence must be in (0, 1), got {ransac_confidence}')
        if ransac_max_iters < 1:
            raise ConfigError(f'ransac_max_iters must be >= 1, got {ransac_max_iters}')
        method = _METHODS.get(ransac_method.strip().lower())
        if method is None:
            raise ConfigError(f'unknown ransac_method {ransac_method!r}; known: {", ".join(sorted(_METHODS))}')
        if max_image_width < 32 or max_features < 8 or cache_size < 1:
            raise ConfigError(
                f'need max_image_width >= 32, max_features >= 8, cache_size >= 1; got '
                f'{max_image_width}, {max_features}, {cache_size}'
            )
        # LabelThresholds validates the thresholds (finite, >= 0).
        try:
            self._thresholds = LabelThresholds(translation_m=translation_threshold, yaw_deg=rotation_threshold_deg)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._min_matches = int(min_matches)
        self._min_inliers = int(min_inliers)
        self._ratio = float(ratio)
        self._ransac_threshold_px = float(ransac_threshold_px)
        self._ransac_confidence = float(ransac_confidence)
        self._ransac_max_iters = int(ransac_max_iters)
        self._ransac_method = method
        self._max_image_width = int(max_image_width)
        self._max_features = int(max_features)
        self._cache_size = int(cache_size)
        self._use_sift = bool(use_sift) and hasattr(cv2, 'SIFT_create')
        self._lock = threading.Lock()
        self._cache: OrderedDict[_CacheKey, PoseEstimate] = OrderedDict()
        self._pending: dict[_CacheKey, threading.Event] = {}
        self._estimations = 0

    def __repr__(self) -> str:
        return (
            f'GeometryBackend(detector={self.detector_name!r}, min_matches={self._min_matches}, '
            f'min_inliers={self._min_inliers}, rotation_threshold_deg={self._thresholds.yaw_deg}, '
            f'translation_threshold={self._thresholds.translation_m})'
        )

    @property
    def detector_name(self) -> str:
        """``'sift'`` or ``'orb'``."""
        return 'sift' if self._use_sift else 'orb'

    @property
    def estimations(self) -> int:
        """How many pair estimations ran (cache misses); for tests and diagnostics."""
        with self._lock:
            return self._estimations

    # ------------------------------------------------------------------ Backend interface

    def answer(self, pair: Pair, question: Question) -> BackendAnswer:
        """Answer a viewpoint question from the estimated relative pose, or abstain.

        ``raw_text`` is a short JSON string (``yaw_deg``, unit ``t12``, ``inliers``, ``matches``, ``label``)
        when answering, ``''`` when abstaining. ``latency_s`` is the time of this call (a cache hit is
        fast). Never raises for a hard pair: it abstains.
        """
        start = time.perf_counter()

        def abstain(reason: str | None) -> BackendAnswer:
            return BackendAnswer(
                backend=self.name,
                raw_text='',
                letter=None,
                latency_s=time.perf_counter() - start,
                abstained=True,
                reason=reason,
            )

        estimate = self.estimate(pair)
        if estimate.pose is None:
            return abstain(estimate.reason)
        label = viewpoint_label(question.question_type, estimate.pose, self._thresholds)
        if label not in question.option_labels:
            return abstain(f'the question offers no option for label {label.value!r}')
        raw = json.dumps(
            {
                'yaw_deg': round(estimate.pose.yaw_deg, 2),
                't12': [round(float(v), 4) for v in estimate.pose.translation],
                'inliers': estimate.inliers,
                'matches': estimate.matches,
                'label': label.value,
            }
        )
        return BackendAnswer(
            backend=self.name,
            raw_text=raw,
            letter=question.letter_for_label(label),
            latency_s=time.perf_counter() - start,
        )

    def ask(self, frames: list[Frame], prompt: str) -> BackendAnswer:
        """Always abstains: free-form questions need a language model."""
        return BackendAnswer(
            backend=self.name,
            raw_text='',
            letter=None,
            latency_s=0.0,
            abstained=True,
            reason='free-form questions need a language model',
        )

    def close(self) -> None:
        """Drop the cache. Idempotent."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------------ estimation

    def estimate(self, pair: Pair) -> PoseEstimate:
        """Relative pose of ``pair`` (cached by ``pair_id``, both stamps and both camera ids).

        Concurrent callers for the same pair wait for the first caller's estimation.
        """
        key: _CacheKey = (
            pair.pair_id,
            pair.frame_1.stamp_ns,
            pair.frame_2.stamp_ns,
            pair.frame_1.camera_id,
            pair.frame_2.camera_id,
        )
        while True:
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
                    return cached
                event = self._pending.get(key)
                if event is None:
                    event = threading.Event()
                    self._pending[key] = event
                    self._estimations += 1
                    owner = True
                else:
                    owner = False
            if not owner:
                event.wait()
                # The owner stored the estimate (or failed); loop to read it or take over.
                continue
            try:
                result = self._estimate_uncached(pair.frame_1, pair.frame_2)
                with self._lock:
                    self._cache[key] = result
                    self._cache.move_to_end(key)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
                return result
            finally:
                with self._lock:
                    self._pending.pop(key, None)
                event.set()

    def _estimate_uncached(self, frame_1: Frame, frame_2: Frame) -> PoseEstimate:
        start = time.perf_counter()

        def abstain(reason: str, matches: int = 0, inliers: int = 0) -> PoseEstimate:
            return PoseEstimate(None, matches, inliers, reason, time.perf_counter() - start)

        prepared_1 = self._prepare(frame_1)
        prepared_2 = self._prepare(frame_2)
        for prepared in (prepared_1, prepared_2):
            if isinstance(prepared, str):
                return abstain(prepared)
        assert not isinstance(prepared_1, str) and not isinstance(prepared_2, str)
        gray_1, k_1 = prepared_1
        gray_2, k_2 = prepared_2
        try:
            points_1, points_2 = self._match(gray_1, gray_2)
        except cv2.error as exc:
            return abstain(f'feature matching failed: {_short(exc)}')
        matches = len(points_1)
        if matches < self._min_matches:
            return abstain(f'too few matches ({matches} < {self._min_matches})', matches)
        norm_1 = cv2.undistortPoints(points_1.reshape(-1, 1, 2), k_1.matrix, None)
        norm_2 = cv2.undistortPoints(points_2.reshape(-1, 1, 2), k_2.matrix, None)
        mean_focal = (k_1.fx + k_1.fy + k_2.fx + k_2.fy) / 4.0
        identity = np.eye(3)
        try:
            essential, mask = cv2.findEssentialMat(
                norm_1,
                norm_2,
                identity,
                method=self._ransac_method,
                prob=self._ransac_confidence,
                threshold=self._ransac_threshold_px / mean_focal,
                maxIters=self._ransac_max_iters,
            )
        except cv2.error as exc:
            return abstain(f'essential matrix failed: {_short(exc)}', matches)
        if essential is None or essential.shape != (3, 3) or mask is None:
            # Several solutions come stacked as (3k, 3); an ambiguous estimate is not trusted.
            return abstain('no unique essential matrix', matches)
        ransac_inliers = int(np.count_nonzero(mask))
        if ransac_inliers < self._min_inliers:
            return abstain(f'too few inliers ({ransac_inliers} < {self._min_inliers})', matches, ransac_inliers)
        try:
            inliers, rotation, translation, _ = cv2.recoverPose(essential, norm_1, norm_2, identity, mask=mask)
        except cv2.error as exc:
            return abstain(f'recoverPose failed: {_short(exc)}', matches, ransac_inliers)
        inliers = int(inliers)
        if inliers < self._min_inliers:
            return abstain(f'too few inliers ({inliers} < {self._min_inliers})', matches, inliers)
        pose = relative_pose_from_recover_pose(rotation, translation)
        return PoseEstimate(pose, matches, inliers, None, time.perf_counter() - start)

    def _prepare(self, frame: Frame) -> tuple[npt.NDArray[np.uint8], CameraIntrinsics] | str:
        """Grayscale image (downscaled) and intrinsics for its size, or the reason to abstain."""
        intrinsics = frame.intrinsics
        if intrinsics is None:
            return 'no intrinsics'
        height, width = frame.height, frame.width
        image_aspect = width / height
        k_aspect = intrinsics.width / intrinsics.height
        if abs(image_aspect - k_aspect) > _ASPECT_TOLERANCE * k_aspect:
            return (
                f'intrinsics are for {intrinsics.width}x{intrinsics.height} but the image is '
                f'{width}x{height} (different aspect ratio)'
            )
        gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
        if width > self._max_image_width:
            new_width = self._max_image_width
            new_height = max(1, round(height * new_width / width))
            gray = cv2.resize(gray, (new_width, new_height), interpolation=cv2.INTER_AREA)
            height, width = new_height, new_width
        if (intrinsics.width, intrinsics.height) != (width, height):
            intrinsics = intrinsics.scaled(width, height)
        return np.ascontiguousarray(gray, dtype=np.uint8), intrinsics

    def _match(self, gray_1: npt.NDArray[np.uint8], gray_2: npt.NDArray[np.uint8]) -> tuple[FloatArray, FloatArray]:
        """Ratio-test matches as two ``(N, 2)`` float64 pixel arrays (``N`` may be 0)."""
        opencv: Any = cv2  # the detector factories are missing from some OpenCV type stubs
        if self._use_sift:
            detector = opencv.SIFT_create(nfeatures=self._max_features)
            norm = cv2.NORM_L2
        else:
            detector = opencv.ORB_create(nfeatures=self._max_features)
            norm = cv2.NORM_HAMMING
        keypoints_1, descriptors_1 = detector.detectAndCompute(gray_1, None)
        keypoints_2, descriptors_2 = detector.detectAndCompute(gray_2, None)
        empty = np.zeros((0, 2), dtype=np.float64)
        if descriptors_1 is None or descriptors_2 is None or len(keypoints_1) < 2 or len(keypoints_2) < 2:
            return empty, empty
        matcher = cv2.BFMatcher(norm)
        knn = matcher.knnMatch(descriptors_1, descriptors_2, k=2)
        index_1: list[int] = []
        index_2: list[int] = []
        for candidates in knn:
            if len(candidates) < 2:
                continue
            best, second = candidates[0], candidates[1]
            if best.distance < self._ratio * second.distance:
                index_1.append(best.queryIdx)
                index_2.append(best.trainIdx)
        if not index_1:
            return empty, empty
        points_1 = np.array([keypoints_1[i].pt for i in index_1], dtype=np.float64)
        points_2 = np.array([keypoints_2[i].pt for i in index_2], dtype=np.float64)
        return points_1, points_2


def _short(exc: BaseException, limit: int = 160) -> str:
    text = ' '.join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + '...'

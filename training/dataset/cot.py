"""Pseudo chain-of-thought for the hybrid cold start, written from the TRUE relative pose.

The paper's 1K pseudo-CoTs came from a large teacher model following a five-step template (identify
the images; visual analysis in the camera and object frames; the movements: translation, yaw, pitch,
roll; the trajectory; the answer), and some contain wrong 3D reasoning (ACTIAL.md). This generator
follows the same five steps but derives every statement from the exact relative pose and the labels
of :func:`actial_ros.geometry.viewpoint_label`, so it is correct by construction; the wording of each
step is drawn from several variants by the row's seeded RNG. The text ends with the answer letter in
the output format ``<think> ... </think> <answer> X </answer>`` (the answer block holds the letter only,
as the accuracy reward compares it exactly).

Statements (CONVENTIONS.md frames): ``t12 = (x, y, z)`` is camera 2's centre in camera 1's optical
frame, x right, y down, z forward; yaw > 0 turned right; pitch > 0 tilted up. When the camera moves
to one side while turning to the other (an orbit), seen from above it circles the object
counter-clockwise when it moves right and turns left, clockwise when it moves left and turns right;
the side of the object that was on the camera's side of travel in the first image faces the camera
more in the second.
"""

from __future__ import annotations

import random

from actial_ros.training.dataset.viewpoint import YAW_BIN_QUESTION, RowQuestion

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.geometry import LabelThresholds, RelativePose, mirror_label, viewpoint_label

__all__ = ['format_cot', 'pseudo_cot']

_STEP1 = (
    'Step 1, identify the images: the first image is the starting view and the second image was taken after the '
    'camera moved; both show the same object, which stayed still.',
    'Step 1, the images: image 1 is the view before the camera moved and image 2 the view after it; the object is '
    'the same and did not move.',
    'Step 1: the first photo is the reference view and the second photo was taken from a new camera position; the '
    'object itself is static, so every change comes from the camera.',
)

_STEP2 = (
    "Step 2, visual analysis: in the first camera's frame x points right, y down and z forward along the optical "
    "axis, with the object in front of the camera. In the object's frame, facing the camera, left and right are "
    'swapped.',
    "Step 2, frames: I reason in the first camera's frame (x to the right, y downwards, z straight ahead towards "
    "the object); seen from the object, which faces the camera, the camera's left is the object's right.",
    "Step 2: the camera frame of image 1 has x right, y down and z forward; the object's own frame looks back at "
    'the camera, so its left and right are mirrored with respect to the camera.',
)


def _signed(value: float, digits: int = 2) -> str:
    return f'{value:+.{digits}f}'


def _direction(label: ViewpointLabel) -> str:
    return {ViewpointLabel.LEFT: 'left', ViewpointLabel.RIGHT: 'right', ViewpointLabel.NONE: 'nowhere'}[label]


def _visual(ego: ViewpointLabel, rotation: ViewpointLabel, rng: random.Random) -> str:
    if ego is ViewpointLabel.NONE or rotation is ViewpointLabel.NONE or ego == rotation:
        return ''
    side = _direction(ego)
    return rng.choice(
        (
            f' In the second image more of the side of the object that was on the {side} in the first image '
            'faces the camera.',
            f' The part of the object that appeared on the {side} in the first image is seen more frontally in the '
            'second.',
        )
    )


def _movements(pose: RelativePose, ego: ViewpointLabel, rotation: ViewpointLabel, unit: str, rng: random.Random) -> str:
    x, y, z = (float(v) for v in pose.translation)
    norm = max((x * x + y * y + z * z) ** 0.5, 1e-12)
    if ego is ViewpointLabel.NONE:
        sideways = 'hardly any sideways movement (|x| is below the no-movement threshold)'
    else:
        sideways = f'a move to the {_direction(ego)}'
    vertical = 'roughly level' if abs(y) < 0.25 * norm else ('upwards' if y < 0 else 'downwards')
    depth = 'forwards, towards the first view direction' if z > 0 else 'backwards, away from the first view direction'
    if abs(z) < 0.25 * norm:
        depth = 'little movement along the viewing direction'
    turn = 'it barely turned' if rotation is ViewpointLabel.NONE else f'the camera turned to its {_direction(rotation)}'
    tilt = 'nearly level' if abs(pose.pitch_deg) < 1.0 else ('tilted up' if pose.pitch_deg > 0 else 'tilted down')
    position = f'({_signed(x)}, {_signed(y)}, {_signed(z)}) {unit}'
    translation = rng.choice(
        (
            f"Step 3, the movements: camera 2's centre lies at {position} in the first camera's frame: "
            f'{sideways}, {vertical}, {depth}.',
            f'Step 3, translation: the second camera centre is at x, y, z = {position} relative to the first camera, '
            f'so there is {sideways}; vertically it is {vertical}; in depth, {depth}.',
        )
    )
    rotation_text = rng.choice(
        (
            f' Rotation: a yaw of {pose.yaw_deg:+.1f} degrees ({turn}), a pitch of {pose.pitch_deg:+.1f} degrees '
            f'({tilt}) and a roll of {pose.roll_deg:+.1f} degrees about the optical axis.',
            f' The relative rotation is yaw {pose.yaw_deg:+.1f}, pitch {pose.pitch_deg:+.1f} ({tilt}), roll '
            f'{pose.roll_deg:+.1f} degrees; from the yaw, {turn}.',
        )
    )
    return translation + rotation_text


def _trajectory(pose: RelativePose, ego: ViewpointLabel, rotation: ViewpointLabel, rng: random.Random) -> str:
    angle = abs(pose.yaw_deg)
    if ego is ViewpointLabel.NONE and rotation is ViewpointLabel.NONE:
        return 'Step 4, the trajectory: the camera stayed almost where it was and kept its heading.'
    if ego is ViewpointLabel.NONE:
        return (
            f'Step 4, the trajectory: the camera turned {_direction(rotation)} by about {angle:.0f} degrees almost '
            'in place.'
        )
    if rotation is ViewpointLabel.NONE:
        return f'Step 4, the trajectory: the camera slid to the {_direction(ego)} while keeping its heading.'
    if ego != rotation:
        sense = 'counter-clockwise' if ego is ViewpointLabel.RIGHT else 'clockwise'
        return rng.choice(
            (
                f'Step 4, the trajectory: moving {_direction(ego)} while turning {_direction(rotation)} keeps the '
                f'object in view: the camera travelled {sense} around the object seen from above, sweeping about '
                f'{angle:.0f} degrees.',
                f'Step 4: combining both, the camera orbited the object {sense} (seen from above), going to its '
                f'{_direction(ego)} and turning {_direction(rotation)} by about {angle:.0f} degrees to keep the '
                'object centred.',
            )
        )
    return (
        f'Step 4, the trajectory: the camera moved {_direction(ego)} and also turned {_direction(rotation)} by '
        f'about {angle:.0f} degrees, so it swung towards the same side rather than circling the object.'
    )


def _answer(question: RowQuestion, pose: RelativePose, rng: random.Random) -> str:
    option = question.options[question.letters.index(question.answer)]
    label = question.answer_label
    choice = f"option {question.answer} ('{option}')"
    kind = question.question_type
    if kind == QuestionType.EGO_TRANSLATION.value:
        claim = (
            "from the camera's perspective the camera did not move sideways"
            if label == 'none'
            else f"from the camera's perspective the camera moved to the {label}"
        )
    elif kind == QuestionType.OBJECT_TRANSLATION.value:
        ego = mirror_label(ViewpointLabel(label))
        claim = (
            'the camera did not move sideways, from any perspective'
            if label == 'none'
            else f'the camera moved to its own {ego.value}, which seen from the object (facing the camera, left and '
            f"right mirrored) is the object's {label}"
        )
    elif kind == QuestionType.ROTATION.value:
        claim = 'the camera did not rotate' if label == 'none' else f'the camera rotated to the {label}'
    elif kind == YAW_BIN_QUESTION:
        direction = label.split('_')[0]
        claim = f'the camera turned {direction} by {abs(pose.yaw_deg):.1f} degrees'
    else:
        raise ValueError(f'unknown question type {kind!r}')
    lead = rng.choice(('Step 5, the answer: ', 'Step 5: so ', 'Step 5, conclusion: '))
    return f'{lead}{claim}; that is {choice}.'


def pseudo_cot(
    question: RowQuestion,
    pose: RelativePose,
    thresholds: LabelThresholds,
    rng: random.Random,
    *,
    unit: str = 'units',
) -> str:
    """A five-step chain of thought for one question, from the true relative pose, in the output format.

    Args:
        question: the row's question with its truth (:class:`~actial_ros.training.dataset.viewpoint.RowQuestion`).
        pose: the pair's exact relative pose (frame 1 -> frame 2).
        thresholds: the label thresholds the question's truth was computed with.
        rng: the row's seeded RNG (wording choices).
        unit: length unit of ``t12`` in the text (``'m'`` for bags, ``'units'`` for SfM captures).

    Returns:
        ``'<think> ... </think> <answer>X</answer>'`` with ``X`` the question's answer letter.

    Raises:
        ValueError: an unknown question type.
    """
    ego = viewpoint_label(QuestionType.EGO_TRANSLATION, pose, thresholds)
    rotation = viewpoint_label(QuestionType.ROTATION, pose, thresholds)
    steps = [
        rng.choice(_STEP1),
        rng.choice(_STEP2) + _visual(ego, rotation, rng),
        _movements(pose, ego, rotation, unit, rng),
        _trajectory(pose, ego, rotation, rng),
        _answer(question, pose, rng),
    ]
    return format_cot('\n'.join(steps), question.answer)


def format_cot(reasoning: str, answer: str) -> str:
    """``'<think> reasoning </think> <answer>answer</answer>'`` (the paper's output format)."""
    return f'<think> {reasoning.strip()} </think> <answer>{answer.strip()}</answer>'

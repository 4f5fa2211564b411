"""A self-contained HTML report of scored answers, to open in a browser (ROS-free).

One file, no external resource (images embedded as JPEG data URLs, inline CSS, no script): the accuracy
table per question type (:class:`actial_ros.scoring.ScoreBoard`), then one card per pair with both
frames as thumbnails, both cameras seen from above (:func:`footprint_svg`) and a table of its
questions: question type, question (with its options), answer, truth, yaw and verdict. Elements carry
``data-*`` attributes and ids (``accuracy``, ``pair-<id>``) so that a test (or a script) can read what the
page shows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from actial_ros.imaging import jpeg_data_url, resize_max
from actial_ros.records import AnswerRecord, AnswerRow
from actial_ros.scoring import ScoreBoard

__all__ = ['THUMBNAIL_WIDTH', 'footprint_svg', 'frame_label', 'render_report', 'write_report']

THUMBNAIL_WIDTH = 320
"""Largest thumbnail width (pixels); heights keep the aspect ratio (at most 240)."""

FrameLoader = Callable[[str, str], 'npt.NDArray[np.uint8] | None']
"""``(camera, frame name) -> (H, W, 3) uint8 RGB``, or ``None`` when the frame cannot be shown."""

_CSS = """
body { font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
.pair { background: #fff; border: 1px solid #ccc; border-radius: 6px; padding: 0.8em; margin: 1em 0; }
.frames img, .frames svg { margin-right: 0.6em; border: 1px solid #999; vertical-align: top; }
.question-text { white-space: pre-line; }
.correct { color: #1a7f37; font-weight: bold; }
.wrong { color: #c62828; font-weight: bold; }
.unscored { color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape('' if value is None else str(value))


def _verdict(record: AnswerRecord) -> tuple[str, str]:
    """The verdict's CSS class and text; the text carries a symbol too, readable without colour."""
    correct = record.correct
    if correct is None:
        return 'unscored', f'&#8211; not scored ({_e(record.status.value)})'
    return ('correct', '&#10003; correct') if correct else ('wrong', '&#10007; wrong')


def frame_label(camera: Any, name: Any) -> str:
    """A frame as a person reads it: ``CAMERA@STAMP_NS`` (the node's names) as ``CAMERA at 0.750 s``; other names
    (a capture's file names) as they are, after the camera."""
    camera_text, text = str(camera or ''), str(name or '')
    prefix, at, stamp = text.rpartition('@')
    if at and stamp.isdigit():
        return f'{prefix or camera_text} at {int(stamp) / 1e9:.3f} s'
    return f'{camera_text} {text}'.strip()


def _thumbnail(image: npt.NDArray[np.uint8] | None, alt: str) -> str:
    if image is None:
        return f'<span class="unscored">({_e(alt)}: no image)</span>'
    small = resize_max(image, THUMBNAIL_WIDTH, 240)
    height, width = small.shape[:2]
    return f'<img src="{jpeg_data_url(small, quality=80)}" alt="{_e(alt)}" width="{width}" height="{height}">'


_VIEW = 120
"""Side of the footprint drawing (pixels)."""
_REACH = 40.0
"""Distance (pixels) at which frame 2's camera is drawn from frame 1's."""


def _wedge(x: float, y: float, heading_rad: float, css: str) -> str:
    """A camera seen from above: a triangle with its apex at the camera, opening along its optical axis."""
    points = [(x, y)]
    for side in (-1.0, 1.0):
        angle = heading_rad + side * math.radians(30.0)  # a 60-degree field of view, for the eye only
        points.append((x + 16.0 * math.sin(angle), y - 16.0 * math.cos(angle)))
    text = ' '.join(f'{px:.2f},{py:.2f}' for px, py in points)
    return f'<polygon class="{css}" points="{text}"/>'


def footprint_svg(record: AnswerRecord) -> str:
    """Both cameras seen from above, as inline SVG, or ``''`` without a relative pose.

    Frame 1's camera sits at the centre facing up (its optical z axis; its x axis to the right); frame 2's
    is placed along the translation's horizontal part (``t12``'s x and z, camera 1 optical frame, drawn
    :data:`_REACH` pixels away whatever its length, which the caption states) and turned by ``yaw_deg``
    (positive: to the right, ``CONVENTIONS.md``). Classes ``camera-1`` and ``camera-2``; each polygon's first
    point is its camera's position.
    """
    yaw, t12 = record.yaw_deg, record.t12
    if yaw is None or t12 is None:
        return ''
    x, z = float(t12[0]), float(t12[2])
    centre = _VIEW / 2.0
    length = math.hypot(x, z)
    scale = _REACH / length if length > 1e-9 else 0.0
    x2, y2 = centre + scale * x, centre - scale * z
    caption = f'yaw {float(yaw):+.1f} deg, x {x:+.2f}, z {z:+.2f}'
    return (
        f'<svg class="footprints" width="{_VIEW}" height="{_VIEW + 16}" '
        f'viewBox="0 0 {_VIEW} {_VIEW + 16}" role="img" aria-label="cameras from above: {caption}">'
        f'<title>frame 1 (grey) and frame 2 (blue) seen from above: {caption}</title>'
        f'<line x1="{centre:.2f}" y1="{centre:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" stroke="#999" stroke-dasharray="3 2"/>'
        f'<g fill="#888" fill-opacity="0.6">{_wedge(centre, centre, 0.0, "camera-1")}</g>'
        f'<g fill="#1f6fd1" fill-opacity="0.6">{_wedge(x2, y2, math.radians(float(yaw)), "camera-2")}</g>'
        f'<text x="4" y="{_VIEW + 12}" font-size="10">{_e(caption)}</text></svg>'
    )


def _accuracy_table(scores: ScoreBoard) -> str:
    head = (
        '<tr><th>question type</th><th>asked</th><th>answered</th><th>abstained</th><th>errors</th>'
        '<th>accuracy</th></tr>'
    )
    rows = []
    named = sorted(scores.scores().items())
    for kind, score in [*named, ('all', scores.total())]:
        accuracy = score.accuracy
        text = '-' if accuracy is None else f'{100 * accuracy:.1f} % ({score.correct}/{score.scored})'
        rows.append(
            f'<tr data-kind="{_e(kind)}"><td>{_e(kind)}</td><td>{score.asked}</td><td>{score.answered}</td>'
            f'<td>{score.abstained}</td><td>{score.errors}</td><td class="accuracy">{_e(text)}</td></tr>'
        )
    return f'<table id="accuracy">{head}{"".join(rows)}</table>'


def render_report(
    rows: Sequence[AnswerRow], *, load_frame: FrameLoader | None = None, title: str = 'actial_ros report'
) -> str:
    """The report's HTML.

    Args:
        rows: viewpoint answers with their frames' names (the demo's answers file, the node's live report).
        load_frame: loads a frame to show; ``None``: no thumbnails.
        title: the page title.
    """
    scores = ScoreBoard()
    scores.extend(row.record for row in rows)
    pairs: dict[int, list[AnswerRow]] = {}
    for row in rows:
        pairs.setdefault(row.record.pair_id, []).append(row)
    cards = []
    for pair_id, questions in pairs.items():
        first = questions[0]
        frames = []
        for which, image_name, frame_name, camera in (
            ('1', first.image_1, first.record.frame_1, first.record.camera_1),
            ('2', first.image_2, first.record.frame_2, first.record.camera_2),
        ):
            name = image_name or frame_name
            image = load_frame(camera, name) if load_frame is not None and name else None
            frames.append(_thumbnail(image, f'frame {which}: {frame_label(camera, name)}'))
        frames.append(footprint_svg(first.record))
        lines = []
        for row in questions:
            record = row.record
            css, verdict = _verdict(record)
            yaw = record.yaw_deg
            lines.append(
                f'<tr class="question" data-type="{_e(record.question_type.value)}" data-verdict="{css}">'
                f'<td>{_e(record.question_type.value)}</td><td class="question-text">{_e(record.question)}</td>'
                f'<td class="answer">{_e(record.answer_letter)} {_e(record.answer)}</td>'
                f'<td class="truth">{_e(record.truth)}</td>'
                f'<td>{"" if yaw is None else f"{float(yaw):+.1f}"}</td>'
                f'<td class="{css}">{verdict}</td></tr>'
            )
        head = (
            '<tr><th>question type</th><th>question</th><th>answer</th><th>truth</th><th>yaw (deg)</th>'
            '<th>verdict</th></tr>'
        )
        cards.append(
            f'<div class="pair" id="pair-{_e(pair_id)}"><h3>pair {_e(pair_id)}: '
            f'{_e(frame_label(first.record.camera_1, first.image_1))} &rarr; '
            f'{_e(frame_label(first.record.camera_2, first.image_2))}</h3>'
            f'<div class="frames">{"".join(frames)}</div><table>{head}{"".join(lines)}</table></div>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{_e(title)}</title><style>{_CSS}</style></head><body>'
        f'<h1>{_e(title)}</h1><p>{len(pairs)} pairs, {len(rows)} questions; accuracy counts unparsed replies as '
        'wrong, abstentions and errors are excluded.</p><h2>Accuracy</h2>'
        f'{_accuracy_table(scores)}<h2>Pairs</h2>{"".join(cards)}</body></html>\n'
    )


def write_report(path: str | Path, rows: Sequence[AnswerRow], **options: Any) -> Path:
    """Write :func:`render_report` to ``path`` (atomically: a temporary file, then a rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f'.{target.name}.tmp')
    tmp.write_text(render_report(rows, **options), encoding='utf-8')
    tmp.replace(target)
    return target

"""``actial-ros report``: re-render the HTML report of a run from its answers file and its source.

actial-ros report ANSWERS.jsonl (--bag PATH [--camera ...] | --capture DIR [--capture DIR2 ...]) --out report.html

The answers are the JSON lines ``actial-ros demo --out`` writes (viewpoint answers with their frames' names); the
frames are read again from the bag or the capture(s) the run used, so a report can be made later, elsewhere, or
again with another layout (:mod:`actial_ros.report`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actial_ros.records import AnswerRow

__all__ = ['configure_parser', 'run']


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros report``."""
    parser.add_argument('answers', type=Path, help='JSON-lines answers file (actial-ros demo --out)')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--capture', type=Path, action='append', help='the LLFF capture(s) of the run, in order')
    source.add_argument('--bag', type=Path, help='the rosbag2 recording of the run')
    parser.add_argument(
        '--camera',
        action='append',
        default=[],
        metavar='NAME:IMAGE_TOPIC[:CAMERA_INFO_TOPIC]',
        help='a camera of the bag (as given to demo; default: recording.json, or the one image topic)',
    )
    parser.add_argument('--extrinsic', action='append', default=[], metavar='NAME:TX,TY,TZ,QX,QY,QZ,QW')
    parser.add_argument('--camera-file', type=Path, help='JSON/YAML camera list of the bag (or a recording.json)')
    parser.add_argument('--out', type=Path, default=Path('report.html'), help='the HTML file to write')
    parser.add_argument('--title', default='actial_ros report', help='page title')


def _rows(path: Path) -> list[AnswerRow]:
    """The viewpoint answer rows of a JSON-lines file (ask answers and blank lines skipped).

    Raises:
        ConfigError: unreadable, or a line that is not a JSON object or not an answer row.
    """
    from actial_ros.errors import ConfigError
    from actial_ros.records import AnswerRow

    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except OSError as exc:
        raise ConfigError(f'cannot read {path}: {exc}') from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f'{path}:{number}: not JSON ({exc})') from None
        if not isinstance(row, dict):
            raise ConfigError(f'{path}:{number}: an answer is a JSON object')
        if row.get('kind', 'viewpoint') == 'viewpoint':
            try:
                rows.append(AnswerRow.from_json_dict(row))
            except ValueError as exc:
                raise ConfigError(f'{path}:{number}: {exc}') from None
    return rows


def run(args: argparse.Namespace) -> int:
    """Write the report: 0, or 2 with the reason (unreadable answers, a source that cannot be opened)."""
    from actial_ros.bags.camera_specs import bag_cameras_from_args
    from actial_ros.demo import frame_loader
    from actial_ros.errors import ActialError
    from actial_ros.report import write_report

    try:
        rows = _rows(args.answers)
        cameras = bag_cameras_from_args(args.camera, args.extrinsic, args.camera_file) if args.bag else ()
        load = frame_loader(bag=args.bag, captures=tuple(args.capture or ()), cameras=cameras)
        write_report(args.out, rows, load_frame=load, title=args.title)
    except ActialError as error:
        print(f'actial-ros report: {error}', file=sys.stderr)
        return 2
    print(f'report: {args.out} ({len(rows)} answers)')
    return 0

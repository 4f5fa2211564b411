"""Shift diagnostic for the learning benchmark (issue 10): can the from-scratch recipe learn the simplest
two-image comparison at all?

Each row is a rotation question whose two images are two crops of ONE render of the learning benchmark,
the second shifted sideways: a camera that turns right sees the scene move left, so "turned right" is a crop
window moved right over the source image. Crops are ``crop`` px square (default 84 of the 112 px renders),
the shift ``min_shift``..``max_shift`` px (default 8..28), resized back to the render size. No floor, depth or
orbit geometry is involved: the whole image shifts, the first-order start a curriculum would begin with.
Training rows are cut from the benchmark's training renders, test rows from its held-out renders.

``--fixed-steps N`` (default 0: SFT on the shifted pairs from random weights, the measured diagnostic) runs the
first stages of ``benchmarks/learning.py``'s curriculum: first N steps of SFT on FIXED-REFERENCE pairs, whose
first window is always the centred one, so that the label is a function of the second image alone; then SFT
from that checkpoint on the shifted pairs. Why
(docs/training.md, "Learning from scratch"): in the shifted pairs, every feature of one image that predicts
the label predicts it with opposite signs for the two images, so a readout of their sum (what attention
that does not yet tell the images apart gives the answer position) carries nothing, and the attention that
would tell them apart gets no gradient without that readout: a saddle. The fixed reference broke it in an
in-process training loop, not yet through ``actial-ros-train sft`` (docs/training.md has both figures).

Stages (each skipped when its output exists): ``rows`` (parquet in the viewpoint schema), ``sft_fixed`` and
``sft`` (``actial-ros-train sft --config config/training/sft_from_scratch.yaml``, the first from the learning
benchmark's random base model), ``evaluate`` (``actial-ros-train evaluate`` on held-out rows of both kinds and
on as many training rows). It prints the accuracy of the direction word (the ``<think>`` line the recipe's
target starts with: what the model saw) and of the option letter (what it answered), against the coin flip
of this left/right-only split.

    .venv/bin/python benchmarks/learning.py --out out/learning --stages render build model   # its inputs
    .venv/bin/python benchmarks/learning_shift.py --learning out/learning --out out/learning_shift
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import io
import json
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def shift_rows(
    source: Path,
    split: str,
    count: int,
    *,
    seed: int,
    crop: int = 84,
    min_shift: int = 8,
    max_shift: int = 28,
    fixed_reference: bool = False,
) -> list[dict[str, Any]]:
    """``count`` rotation rows (viewpoint schema) made of shifted crops of the ``image_1`` renders of the
    viewpoint dataset in ``source`` (its ``data/*.parquet``); left and right by a seeded coin flip.

    With ``fixed_reference`` the first window is always the centred one (shifts up to half the margin): the
    label is then a function of the second image alone, a first-order cue (docs/training.md)."""
    import pyarrow.parquet as pq
    from actial_ros.training.dataset.schema import viewpoint_row
    from actial_ros.training.dataset.viewpoint import RowQuestion
    from PIL import Image

    from actial_ros.enums import QuestionType, ViewpointLabel
    from actial_ros.questions import make_question

    rng = random.Random(seed)
    renders: list[tuple[bytes, str]] = []
    for path in sorted(glob.glob(str(source / 'data' / '*.parquet'))):
        table = pq.read_table(path, columns=['image_1', 'object_id'])
        for image, object_id in zip(
            table.column('image_1').to_pylist(), table.column('object_id').to_pylist(), strict=True
        ):
            renders.append((image['bytes'], object_id))
    if not renders:
        raise SystemExit(f'no rendered rows in {source}/data: run benchmarks/learning.py first')
    rows = []
    for index in range(count):
        data, object_id = rng.choice(renders)
        image = Image.open(io.BytesIO(data)).convert('RGB')
        width, height = image.size
        right = rng.random() < 0.5  # camera turned right: the second window lies to the right
        if fixed_reference:
            centre = (width - crop) // 2
            shift = rng.randint(min(min_shift, centre), min(max_shift, centre))
            edges = (centre, centre + shift if right else centre - shift)
        else:
            shift = rng.randint(min_shift, max_shift)
            left_edge = rng.randint(0, width - crop - shift)
            edges = (left_edge, left_edge + shift) if right else (left_edge + shift, left_edge)
        top = rng.randint(0, height - crop)
        crops = []
        for x in edges:
            buffer = io.BytesIO()
            image.crop((x, top, x + crop, top + crop)).resize((width, height), Image.Resampling.BILINEAR).save(
                buffer, format='JPEG', quality=90
            )
            crops.append(buffer.getvalue())
        label = ViewpointLabel.RIGHT if right else ViewpointLabel.LEFT
        question = RowQuestion.from_question(make_question(QuestionType.ROTATION, label, rng))
        rows.append(
            viewpoint_row(
                row_id=f'shift/{split}/{index}',
                source='shift',
                object_id=object_id,
                split=split,
                image_1=crops[0],
                image_2=crops[1],
                image_1_name='crop_1',
                image_2_name='crop_2',
                question=question,
                yaw_deg=float(shift if right else -shift),  # a stand-in: pixels, not degrees
                pitch_deg=0.0,
                roll_deg=0.0,
                t12=(0.0, 0.0, 0.0),
            )
        )
    return rows


def _write(rows: list[dict[str, Any]], path: Path) -> None:
    from actial_ros.training.dataset.schema import features
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features()).to_parquet(str(path))


def direction_and_letter(rows_file: Path | Sequence[Path], predictions_file: Path) -> dict[str, float]:
    """Accuracy of the direction word (first word after ``<think>``) and of the letter, per evaluated row of
    the parquet file(s) ``rows_file``."""
    import pyarrow.parquet as pq

    files = [rows_file] if isinstance(rows_file, Path) else list(rows_file)
    truth = {row['id']: row['answer_label'] for row in pq.ParquetDataset([str(f) for f in files]).read().to_pylist()}
    word = letter = total = 0
    for line in predictions_file.read_text(encoding='utf-8').splitlines():
        prediction = json.loads(line)
        match = re.search(r'<think>\s*(\w+)', prediction.get('raw_text') or '')
        word += bool(match and match.group(1) == truth[prediction['item_id']])
        letter += bool(prediction['correct'])
        total += 1
    return {'rows': total, 'direction_word': word / max(1, total), 'letter': letter / max(1, total)}


def _learning() -> Any:
    """``benchmarks/learning.py`` as a module: its ``sft_stage`` and ``evaluate`` run the commands here too."""
    import importlib.util

    spec = importlib.util.spec_from_file_location('learning_benchmark', Path(__file__).with_name('learning.py'))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def sft(model: Path, data: Path, output: Path, *, steps: int, seed: int, max_pixels: int) -> None:
    """``actial-ros-train sft`` with the from-scratch recipe, from ``model`` on ``data`` (skipped when done;
    ``learning.sft_stage``, its log in ``output.log``)."""
    learning = _learning()
    scale = dataclasses.replace(learning.SCALES['full'], max_pixels=max_pixels)
    learning.sft_stage(model, data, output, steps, scale, '--seed', str(seed), log=output.with_suffix('.log'))


def evaluate(model: Path, rows_file: Path, out: Path, *, limit: int, max_pixels: int) -> dict[str, float]:
    """``actial-ros-train evaluate`` of ``model`` on the first ``limit`` rows of ``rows_file``
    (``learning.evaluate``); :func:`direction_and_letter` of its predictions."""
    learning = _learning()
    scale = dataclasses.replace(learning.SCALES['full'], max_pixels=max_pixels)
    learning.evaluate(model, rows_file.parent, out, scale, 'shift', limit=limit)
    return direction_and_letter(rows_file, out / 'predictions.jsonl')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--learning', type=Path, default=REPO / 'out' / 'learning', help='learning benchmark out')
    parser.add_argument('--out', type=Path, default=REPO / 'out' / 'learning_shift')
    parser.add_argument('--train-rows', type=int, default=8000)
    parser.add_argument('--test-rows', type=int, default=600)
    parser.add_argument('--max-steps', type=int, default=1200, help='SFT steps on the shifted pairs')
    parser.add_argument(
        '--fixed-steps',
        type=int,
        default=0,
        help='SFT steps on fixed-reference pairs first (the curriculum; 0: none, the from-scratch start)',
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--max-pixels', type=int, default=3136, help='image pixels (3136: 4 tokens per image, the recipe; 12544: 16)'
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    data = {
        'fixed': out / 'data' / 'fixed' / 'train-00000.parquet',
        'fixed_test': out / 'data' / 'fixed_test' / 'test-00000.parquet',
        'train': out / 'data' / 'train' / 'train-00000.parquet',
        'test': out / 'data' / 'test' / 'test-00000.parquet',
    }
    renders = {'train': args.learning / 'data' / 'train', 'test': args.learning / 'data' / 'heldout'}
    for name, split, seed, count, fixed in (
        ('train', 'train', args.seed, args.train_rows, False),
        ('test', 'test', args.seed + 1, args.test_rows, False),
        ('fixed', 'train', args.seed + 2, args.train_rows // 2, True),
        ('fixed_test', 'test', args.seed + 3, args.test_rows, True),
    ):
        if not data[name].exists():
            _write(shift_rows(renders[split], split, count, seed=seed, fixed_reference=fixed), data[name])
    start = args.learning / 'base'
    results: dict[str, dict[str, float]] = {}
    if args.fixed_steps > 0:
        fixed_model = out / 'sft_fixed'
        sft(
            start, data['fixed'].parent, fixed_model, steps=args.fixed_steps, seed=args.seed, max_pixels=args.max_pixels
        )
        results['fixed reference, held out'] = evaluate(
            fixed_model, data['fixed_test'], out / 'eval_fixed', limit=args.test_rows, max_pixels=args.max_pixels
        )
        start = fixed_model
    model = out / 'sft'
    sft(start, data['train'].parent, model, steps=args.max_steps, seed=args.seed, max_pixels=args.max_pixels)
    for split, name in (('test', 'shifted, held out'), ('train', 'shifted, own rows')):
        results[name] = evaluate(
            model, data[split], out / f'eval_{split}', limit=args.test_rows, max_pixels=args.max_pixels
        )
    (out / 'results.json').write_text(json.dumps(results, indent=2) + '\n', encoding='utf-8')
    stages = f'{args.fixed_steps} fixed-reference + ' if args.fixed_steps > 0 else ''
    print(f'shift diagnostic after {stages}{args.max_steps} SFT steps (coin flip: 0.500):')
    for name, figures in results.items():
        print(
            f'  {name:26s} ({int(figures["rows"])} rows): direction word {figures["direction_word"]:.3f}, '
            f'letter {figures["letter"]:.3f}'
        )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

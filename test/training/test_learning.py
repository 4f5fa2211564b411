"""CI guards that training SEES the images: a Qwen2.5-VL trained from scratch by the shipped commands
(``sim --bag`` -> ``build-viewpoint`` -> ``sft`` with config/training/sft_from_scratch.yaml -> ``evaluate``)
must fit its own training rows well above what the question text alone allows (``text_only_fit`` in
benchmarks/learning.py).

Every row's answer depends on its two images only (the question text, with its shuffled options, does not
tell left from right), so a model that fits the rows must read the images of each row, in the collated
batch and at evaluation. A processor or template change that blinds the model, or images dropped in
collation, makes this test fail: with blanked images (``blank_images``) the same run stays at the text-only
fit (benchmarks/README.md, "Learning", has the measured figures and the spread across seeds).

``test_model_trained_from_scratch_answers_about_unseen_objects`` is the learning proof at CI scale (the
``ci_heldout`` scale: 16 training orbits, 500 SFT steps, 480 questions about 8 orbits around objects never
seen in training; 6 minutes on 2 cores); ``ACTIAL_LEARNING_BLANK=1`` runs it on grey images, where it must fail.
The full benchmark is ``benchmarks/learning.py`` (docs/training.md, "Learning from scratch").
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip('pybullet')
pytest.importorskip('trl')

REPO = Path(__file__).resolve().parents[2]
MARGIN = 0.08
"""Accuracy required above the text-only fit (the best a model can do on these rows without the images, by
memorising each question text's most common answer: 0.77 here). Measured on its own 64 rows: 0.94 and 0.83
with images (text-only fit 0.77 and 0.69; two seeds), 0.75 with blanked images (benchmarks/README.md,
"Learning")."""


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location('learning_benchmark', REPO / 'benchmarks' / 'learning.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_model_trained_from_scratch_reads_the_images_of_its_rows(tmp_path: Path) -> None:
    learning = _benchmark()
    scale = learning.SCALES['ci']
    runs = learning.run_specs(learning.TRAIN_OBJECTS, scale.train_runs, 11, 'train')
    learning.render(runs, tmp_path / 'bags', scale, 2)
    data = tmp_path / 'data'
    learning.build(
        learning.bag_sources(tmp_path / 'bags', runs), data, pairs_per_run=scale.pairs_per_run, seed=3, workers=2
    )
    learning.build_model(tmp_path / 'base', scale, 0)
    learning.sft(tmp_path, scale, '--data', str(data))
    results = learning.evaluate(tmp_path / 'sft', data, tmp_path / 'eval', scale, 'SFT')
    blind = learning.blind_baselines(data)['overall']
    text_only = learning.text_only_fit(data)
    accuracy = results['summary']['viewpoint']['overall']
    assert accuracy['total'] == blind['total'] == scale.train_runs * scale.pairs_per_run
    assert blind['never_none'] == pytest.approx(0.5, abs=0.01)  # orbits: never "no movement"
    assert 0.5 < text_only < 0.85
    assert accuracy['format_rate'] == 1.0
    assert accuracy['accuracy'] >= text_only + MARGIN, (text_only, json.dumps(results['summary'], indent=1))


HELDOUT_MARGIN = 0.25
"""Held-out accuracy required above the split's majority-label rate (53.8 % on these 480 questions). Measured:
100 % (480/480) after 600 steps on the same rows (2026-12-06). This draw (orbits and weights of seed 0) leaves
the loss plateau in time; others do not: seeds 1 and 2 reach 65.0 and 55.0 % at 500 steps, seed 1 81.5 % at
800 (benchmarks/README.md, "the spread over seeds"). The test is deterministic on the pinned CPU stack, but
a change of the random streams (another torch or transformers release) can fail it without a regression of
ours: then re-measure the draws before suspecting the code."""


@pytest.mark.timeout(900)
def test_model_trained_from_scratch_answers_about_unseen_objects(tmp_path: Path) -> None:
    """The learning proof at CI scale: 16 training orbits, SFT with the shipped recipe, questions about 8
    orbits around objects never seen in training."""
    learning = _benchmark()
    scale = learning.SCALES['ci_heldout']
    train, heldout = learning.split_specs(scale, 0)
    learning.render_splits(tmp_path, train, heldout, scale, 2)
    train_data, heldout_data = learning.build_splits(tmp_path, train, heldout, scale, 0, 2)
    if os.environ.get('ACTIAL_LEARNING_BLANK'):  # the control: the same run on grey images must fail
        learning.blank_images(train_data)
        learning.blank_images(heldout_data)
    learning.build_model(tmp_path / 'base', scale, 0)
    learning.sft(tmp_path, scale, '--data', str(train_data))
    results = learning.evaluate(tmp_path / 'sft', heldout_data, tmp_path / 'eval', scale, 'SFT')
    blind = learning.blind_baselines(heldout_data)['overall']
    accuracy = results['summary']['viewpoint']['overall']
    assert accuracy['total'] == blind['total'] == scale.heldout_runs * scale.heldout_pairs_per_run
    assert accuracy['accuracy'] >= blind['majority'] + HELDOUT_MARGIN, json.dumps(results['summary'], indent=1)


def test_anchored_rows_keep_pairs_whose_first_camera_faces_the_reference(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    learning = _benchmark()
    # one orbit starting at azimuth 350 degrees, turning at -30 degrees/s: at t s the camera is at 350 - 30 t
    spec = learning.RunSpec('run_a', 'duck_vhacd.urdf', 0, 1.0, 0.1, 5.0, -30.0, 350.0, 60.0)
    stamps_s = [0.0, 0.5, 1.0, 6.0, 11.5, 12.0]  # azimuths 350, 335, 320, 170, 5 (365 - 360), 350
    (tmp_path / 'data' / 'data').mkdir(parents=True)
    table = pa.table(
        {
            'id': [f'row{i}' for i in range(len(stamps_s))],
            'object_id': ['run_a'] * len(stamps_s),
            'image_1_name': [str(int(t * 1e9)) for t in stamps_s],
        }
    )
    pq.write_table(table, tmp_path / 'data' / 'data' / 'train-00000.parquet')
    kept = learning.anchored_rows(tmp_path / 'data', [spec], tmp_path / 'out', reference_deg=0.0, tolerance_deg=12.0)
    rows = pq.read_table(tmp_path / 'out' / 'train-00000.parquet').column('id').to_pylist()
    assert kept == 3 and rows == ['row0', 'row4', 'row5']


def test_random_scene_runs_make_each_question_type_its_own_bit(tmp_path: Path) -> None:
    """The ``random`` scene's motions (orbit, outward orbit, in-place turn) give the ego-translation and rotation
    labels no fixed relation (issue 20, item 2), its walls and lights differ per run, and swapping a row's images
    gives it the mirrored truth (the control that a model reading geometry must follow)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    learning = _benchmark()
    scale = learning.Scale(
        train_runs=3, heldout_runs=0, pairs_per_run=12, heldout_pairs_per_run=0, max_steps=0, grpo_steps=0
    )
    scale = learning.dataclasses.replace(scale, image_size=48, frame_rate_hz=2.0)
    specs = learning.run_specs(learning.TRAIN_OBJECTS, 3, 5, 'run', learning.SCENES['random'])
    assert [spec.motion for spec in specs] == ['orbit', 'outward', 'turn']
    assert len({spec.light for spec in specs}) == len({spec.backdrop_yaw_deg for spec in specs}) == 3
    assert {spec.backdrop for spec in specs} == {'noise'}
    same = learning.run_specs(learning.TRAIN_OBJECTS, 3, 5, 'run')  # the earlier scene keeps its draws
    assert [(s.radius_m, s.start_deg) for s in same] == [(s.radius_m, s.start_deg) for s in specs]
    assert {(s.motion, s.backdrop, s.light) for s in same} == {('orbit', 'panorama', None)}
    learning.render(specs, tmp_path / 'bags', scale, 2)
    data = tmp_path / 'data'
    learning.build(learning.bag_sources(tmp_path / 'bags', specs), data, pairs_per_run=12, seed=1, workers=2)
    table = pq.read_table(sorted((data / 'data').glob('*.parquet')))
    assert set(table.column('object_id').to_pylist()) == {'run_000', 'run_001', 'run_002'}
    for motion, run in (('orbit', 'run_000'), ('outward', 'run_001'), ('turn', 'run_002')):
        (tmp_path / motion / 'data').mkdir(parents=True)
        only = table.filter(pc.equal(table.column('object_id'), run))
        pq.write_table(only, tmp_path / motion / 'data' / 'train-00000.parquet')
    assert learning.label_agreement(tmp_path / 'orbit')['agreement'] == 0.0  # moves right while turning left
    assert learning.label_agreement(tmp_path / 'outward')['agreement'] == 1.0  # moves left while turning left
    assert learning.label_agreement(tmp_path / 'turn')['translation_none'] == 1.0
    assert 0.3 < learning.label_agreement(data)['agreement'] < 0.7
    rows = table.to_pylist()
    learning.swap_images(data)
    swapped = {row['id']: row for row in pq.read_table(sorted((data / 'data').glob('*.parquet'))).to_pylist()}
    mirror = {'left': 'right', 'right': 'left', 'none': 'none'}
    for row in rows:
        after = swapped[row['id']]
        assert after['image_1'] == row['image_2'] and after['image_2'] == row['image_1']
        assert after['answer_label'] == mirror[str(row['answer_label'])]
        assert after['option_labels'][ord(str(after['answer'])) - ord('A')] == after['answer_label']

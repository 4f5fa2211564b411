"""CI guards that training SEES the images: a Qwen2.5-VL trained from scratch by the shipped commands
(``sim --bag`` -> ``build-viewpoint`` -> ``sft`` with config/training/sft_from_scratch.yaml -> ``evaluate``)
must fit its own training rows well above what the question text alone allows (``text_only_fit`` in
benchmarks/learning.py).

Every row's answer depends on its two images only (the question text, with its shuffled options, does not
tell left from right), so a model that fits the rows must read the images of each row, in the collated
batch and at evaluation. A processor or template change that blinds the model, or images dropped in
collation, makes this test fail: with grey images (``ACTIAL_LEARNING_BLANK=1``) the same run stays at the
text-only fit. What it does NOT show is viewpoint reasoning: the fitted model does not follow its rows' images
when they are swapped (43.8 % against the swapped truth, 56 % of answers kept; benchmarks/README.md, "Learning").

The held-out learning proof of the short target (``test_model_trained_from_scratch_answers_about_unseen_objects``)
is NOT in CI: its one draw passed on one machine and failed on another (issue 20: 100 % here, 51.9 % on a 2-core AMD
EPYC), and that recipe answers at chance in unseen scenes. It runs on request (``ACTIAL_LEARNING_HELDOUT=1``).
What CI guards held out is the laid-out recipe, on one CI-sized draw (24 training and 8 held-out scenes, rotation
rows, made once for both tests by the ``ci_draws`` fixture): the step every laid-out result builds on
(``test_model_trained_from_scratch_reads_each_image_at_its_place_in_unseen_scenes``: the model names the colour of
each quarter of each image in scenes it never saw, in the images' order, and not from grey images), and the turn
itself (``test_model_trained_from_scratch_answers_the_turn_in_unseen_scenes_and_flips_it_with_the_images``: with the
comparison laid out in its reply and the options restated, the scored letter above the majority rate in unseen
scenes, flipping with the images, at the majority rate on grey images). Seeds and thread counts measured, and the
failures seen, are in each test's constants and docs/training.md ("What CI guards held out").
The full benchmark is ``benchmarks/learning.py`` (docs/training.md, "Learning from scratch").
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from script_modules import load_script

pytest.importorskip('pybullet')
pytest.importorskip('trl')

REPO = Path(__file__).resolve().parents[2]
THREADS = 2
"""torch's intra-op thread count in every command of these tests, pinned: float reductions split across threads
differ in their last bits, and a from-scratch run amplifies that (docs/training.md)."""
MARGIN = 0.08
"""Accuracy required above the text-only fit (the best a model can do on these rows without the images, by
memorising each question text's most common answer: 0.77 at seed 0). Measured on its own 64 rows, seeds 0, 1 and 2
at 1 and 2 threads (benchmarks/README.md, "Learning", 2026-12-07): see ``FIT_SEEDS``."""
FIT_SEEDS = (0,)
"""The draw CI trains (data, weights and trainer seed together: ``learning.own_rows_fit``); every seed measured
passed at both thread counts (benchmarks/README.md), so CI runs one (3-5 minutes alone on 2 cores)."""


def _pin_threads(patch: pytest.MonkeyPatch) -> None:
    """Pin torch's intra-op thread count to :data:`THREADS` for every command run under ``patch``."""
    for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        patch.setenv(name, str(THREADS))


def _benchmark() -> ModuleType:
    return load_script(REPO / 'benchmarks' / 'learning.py', 'learning_benchmark')


@pytest.mark.timeout(1200)
@pytest.mark.parametrize('seed', FIT_SEEDS)
def test_model_trained_from_scratch_reads_the_images_of_its_rows(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    learning = _benchmark()
    _pin_threads(monkeypatch)
    blank = bool(os.environ.get('ACTIAL_LEARNING_BLANK'))  # the control: grey images, where it must fail
    fit = learning.own_rows_fit(tmp_path, seed, blank=blank, workers=2)
    scale = learning.SCALES['ci']
    blind = learning.blind_baselines(tmp_path / 'data')['overall']
    assert fit['rows'] == blind['total'] == scale.train_runs * scale.pairs_per_run
    assert blind['never_none'] == pytest.approx(0.5, abs=0.01)  # orbits: never "no movement"
    assert 0.5 < fit['text_only'] < 0.85
    assert fit['format_rate'] == 1.0
    assert fit['accuracy'] >= fit['text_only'] + MARGIN, json.dumps(fit)


GROUNDING_SEEDS = (0,)
"""The draw CI trains for the held-out grounding check (data, weights and trainer seed: ``heldout_grounding``): seed
0 was the weakest of seeds 0, 1 and 2 measured at 1 and 2 threads (benchmarks/README.md, "Learning from scratch",
2026-12-07)."""
WORDS_MARGIN = 0.15
"""Held-out colour words required above the places' majority rates (each place's most common word among the held-out
rows), on average over the 8 places; measured 0.245 to 0.396 over seeds 0-2."""
PLACE_MARGIN = 0.05
"""The same at every one of the 8 places; measured 0.110 at the worst place of seeds 0-2."""
ORDER_MARGIN = 0.15
"""Required above 1 for the accuracy on the words whose quarter differs between the two images, held out plus with
the images swapped (against the swapped truth): a reply blind to the images' order scores at most 1
(``learning_grounding.DIFFERING_WORDS``); measured 1.304 to 1.470 over seeds 0-2."""


def _grounding() -> ModuleType:
    return load_script(REPO / 'benchmarks' / 'learning_grounding.py', 'learning_grounding')


@pytest.fixture(scope='module')
def ci_draws(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """The CI-sized held-out draw of a seed (``learning_grounding.ci_draw``: 24 training and 8 held-out scenes,
    rendered, built, a random base model), made once per seed for both held-out checks; every image grey with
    ``ACTIAL_LEARNING_BLANK=1``."""
    grounding, made = _grounding(), dict[int, Path]()

    def draw(seed: int) -> Path:
        if seed not in made:
            with pytest.MonkeyPatch.context() as patch:
                _pin_threads(patch)
                blank = bool(os.environ.get('ACTIAL_LEARNING_BLANK'))
                made[seed] = grounding.ci_draw(tmp_path_factory.mktemp(f'ci_draw_{seed}'), seed, blank=blank)
        return made[seed]

    return draw


@pytest.mark.timeout(2400)
@pytest.mark.parametrize('seed', GROUNDING_SEEDS)
def test_model_trained_from_scratch_reads_each_image_at_its_place_in_unseen_scenes(
    ci_draws: Callable[[int], Path], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained by the shipped recipe to write the colour of each quarter of image 1, then of image 2, before its
    answer (``learning_grounding.py --task grounded``, 24 training scenes, 400 steps), a model from random weights
    names them around objects and in scenes it never saw (8 held-out runs: other walls, floors and lights), each
    image at its place and in its order (with the images swapped its words follow them), and not from grey images.
    Fails with ``ACTIAL_LEARNING_BLANK=1`` (every image grey), and when the training rows lose the images' order
    (seen once with half of them swapped, benchmarks/README.md). The turn after those words is not learned at this
    size (docs/training.md); the laid-out turn is (the next test)."""
    grounding = _grounding()
    _pin_threads(monkeypatch)
    results = grounding.heldout_grounding(ci_draws(seed), seed)
    words = grounding.WORDS_BY_PLACE
    held_out, swapped, grey = (results[k] for k in ('held out', 'control: images swapped', 'control: grey images'))
    report = json.dumps({k: v for k, v in results.items() if k != 'loss'}, indent=1)
    majority = held_out[f'{words}, majority']
    assert len(held_out[words]) == len(majority) == 8, report
    assert held_out['by question type']['rotation']['rows'] >= 100, report
    excess = np.subtract(held_out[words], majority)
    assert excess.mean() >= WORDS_MARGIN and excess.min() >= PLACE_MARGIN, report  # in unseen scenes
    differing = grounding.DIFFERING_WORDS
    order = held_out.get(differing, 0.0) + swapped.get(differing, 0.0)  # none differ where every image is grey
    assert order >= 1 + ORDER_MARGIN, report  # in the images' order
    assert np.subtract(grey[words], majority).mean() < PLACE_MARGIN, report  # from the images, not the prompt


TURN_SEEDS = (0,)
"""The draw CI trains for the held-out turn check (``learning_grounding.heldout_turn``, the grounding check's draw):
seeds 0, 1 and 2 measured pass at 1 and at 2 threads (identical runs at both: every figure and logged loss)
(docs/training.md, "The turn in CI", 2026-12-07)."""
TURN_ORDER_MARGIN = 0.1
"""Required above 1 for the held-out letter plus the letter with the images swapped (against the swapped truth): every
turn's mirror is another option (the test checks that every swapped row's answer differs), so a reply that does not
depend on the images' order is right on at most one of the two; measured 1.232 / 1.167 / 1.235 at seeds 0-2, 1.000
with every image grey and 1.000 with half the training rows' images swapped (their targets kept)."""
TURN_MARGIN = 0.02
"""Held-out letter required above the majority rate of the held-out turns (143-157 of them): measured +0.077 / +0.042
/ +0.051 at seeds 0-2, -0.058 with every image grey. The order above is the strong claim; this one says that the
answers in unseen scenes are not only ordered but right more often than the blind rate."""


@pytest.mark.timeout(2400)
@pytest.mark.parametrize('seed', TURN_SEEDS)
def test_model_trained_from_scratch_answers_the_turn_in_unseen_scenes_and_flips_it_with_the_images(
    ci_draws: Callable[[int], Path], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out turn: trained by the shipped recipe on the same 24 scenes to lay out its comparison before the
    answer (``learning_grounding.py --task matched --fixed-length --option-list``: two pairs of quarter colours of
    the two images with a same/not verdict each, the turn, the options restated by letter; 800 steps), a model from
    random weights answers which way the camera turned (the scored letter) in scenes it never saw above the majority
    rate, its answers flip when the images are swapped, and grey images give the majority rate. Fails with
    ``ACTIAL_LEARNING_BLANK=1`` (every image grey: held out plus swapped exactly 1.000, held out 0.471 against a
    majority rate of 0.529; seen at 1 thread, 2026-12-07), and when training loses the images' order (half the
    training rows' images swapped, their targets kept; a patch outside the tree: held out 0.419, sum 1.000)."""
    import pyarrow.parquet as pq

    grounding = _grounding()
    _pin_threads(monkeypatch)
    draw = ci_draws(seed)
    results = grounding.heldout_turn(draw, seed)
    sections = ('held out', 'control: images swapped', 'control: grey images')
    held_out, swapped, grey = (results[k]['by question type']['rotation'] for k in sections)
    majority = results['readers of the words']['majority']
    report = json.dumps({k: v for k, v in results.items() if k != 'loss'}, indent=1)
    truths = [
        pq.read_table(draw / 'turn' / folder / 'h.parquet', columns=['answer'])['answer'].to_pylist()
        for folder in ('rows/heldout', 'controls/images_swapped/rows')
    ]
    assert len(truths[0]) == held_out['rows'] == swapped['rows'] >= 100, report
    assert all(a != b for a, b in zip(*truths, strict=True))  # every swapped turn has the other answer
    assert held_out['letter'] + swapped['letter'] >= 1 + TURN_ORDER_MARGIN, report  # it flips with the images
    assert held_out['letter'] >= majority + TURN_MARGIN, report  # in unseen scenes
    assert grey['letter'] <= majority + PLACE_MARGIN, report  # from the images, not the prompt


HELDOUT_MARGIN = 0.25
"""Held-out accuracy required above the split's majority-label rate (53.8 % on these 480 questions)."""


@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    not os.environ.get('ACTIAL_LEARNING_HELDOUT'),
    reason='not reproducible yet (issue 20): one draw, 100 % on one machine and 51.9 % on another; run it with '
    'ACTIAL_LEARNING_HELDOUT=1 (and ACTIAL_LEARNING_SCENE=random for unseen scenes)',
)
def test_model_trained_from_scratch_answers_about_unseen_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The learning proof at CI scale: 16 training runs, SFT with the shipped recipe, questions about 8 runs around
    objects never seen in training (in scenes never seen either with ``ACTIAL_LEARNING_SCENE=random``); must fail
    with ``ACTIAL_LEARNING_BLANK=1`` (grey images)."""
    learning = _benchmark()
    _pin_threads(monkeypatch)
    scale = learning.SCALES['ci_heldout']
    train, heldout = learning.split_specs(scale, 0, os.environ.get('ACTIAL_LEARNING_SCENE', 'same'))
    learning.render_splits(tmp_path, train, heldout, scale, 2)
    blank = bool(os.environ.get('ACTIAL_LEARNING_BLANK'))
    train_data, heldout_data = learning.build_splits(tmp_path, train, heldout, scale, 0, 2, blank=blank)
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


def test_the_benchmark_plots_its_results(tmp_path: Path) -> None:
    """results.json drawn as a PNG (matplotlib, the ``plots`` extra): the loss curve and one bar per row."""
    pytest.importorskip('matplotlib')
    import cv2

    learning = _benchmark()
    results = {
        'sft_loss': [{'step': float(s), 'loss': 2.0 / s} for s in range(25, 825, 25)],
        'accuracy': {'SFT': {'overall': 0.62}, 'control, sft: grey images': {'overall': 0.5}},
        'baselines': {'overall': {'majority': 0.53, 'never_none': 0.5}},
        'scene': 'random',
        'seed': 0,
        'date': '2026-12-07',
        'machine': 'test',
    }
    path = learning.plot_results(results, tmp_path / 'learning.png')
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 800
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # drawn, not blank


def test_the_benchmark_writes_its_figures_into_the_model_card(tmp_path: Path) -> None:
    learning = _benchmark()
    (tmp_path / 'README.md').write_text('# sft: a Qwen2.5-VL checkpoint trained by actial_ros (SFT)\n')
    results = {'scene': 'random', 'seed': 1, 'threads': 2, 'machine': 'm', 'date': 'd', 'table': '| a |\n|---|'}
    learning.card_figures(tmp_path, results)
    learning.card_figures(tmp_path, {**results, 'table': '| b |\n|---|'})  # a later run replaces the section
    card = (tmp_path / 'README.md').read_text()
    assert card.startswith('# sft:') and card.count('## Held-out figures') == 1
    assert '| b |' in card and '| a |' not in card and 'seed 1' in card

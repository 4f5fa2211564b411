"""Learning benchmark: does a Qwen2.5-VL trained from scratch by the shipped pipeline answer viewpoint
questions about objects it never saw?

Everything runs through the package's own commands, in stages (each skipped when its output exists):

1. ``render``: ``actial-ros sim --bag`` renders full orbits (``--floor checker``, ``--backdrop panorama``:
   distant walls whose hue and brightness follow azimuth, as a room's walls differ) around TRAINING
   objects and around a DISJOINT set of HELD-OUT objects; radius, camera height and pitch, direction and
   start azimuth vary per run. Each bag carries its camera mount in ``recording.json``.
2. ``build``: ``actial-ros-train build-viewpoint --source rosbag:BAG ...`` builds the training set and the
   held-out set (no flags about the mount: the bags say it).
3. ``model``: a randomly initialised Qwen2.5-VL of the scale's size preset (``small``, 4.7 M parameters;
   :func:`actial_ros.training.tiny_model.build_tiny_qwen25vl`; no weights can be downloaded here).
4. ``curriculum`` (only with ``--curriculum-steps``; not needed since the ``small`` preset initialises at
   0.06): three SFT stages with the same recipe, each from the previous checkpoint, whose tasks are
   first-order: shifted crops with a fixed first window, shifted crops, orbit pairs whose first camera faces
   one direction of the world (:func:`curriculum`); each checkpoint's held-out figure goes to
   ``results.json`` (``curriculum``).
5. ``sft``: ``actial-ros-train sft --config config/training/sft_from_scratch.yaml`` on the orbits, from the
   random model (or the last curriculum checkpoint).
6. ``grpo``: ``actial-ros-train grpo --config config/training/grpo_from_sft.yaml`` on the viewpoint rows
   alone (no SAT), from the SFT checkpoint; its reward log is kept.
7. ``evaluate``: ``actial-ros-train evaluate`` of the untrained, SFT and GRPO models on the held-out rows,
   and the geometry backend (SIFT + essential matrix) on the same pairs.
8. ``flywheel``: the SFT checkpoint in the node, scored live: ``actial-ros demo --bag`` replays 8 held-out
   orbits into ``spatial_reasoner`` with the in-process ``transformers`` backend (:func:`flywheel`).

It prints one table: held-out accuracy per question type next to the split's blind baselines (the
majority label; never "no movement", i.e. a coin flip between left and right), the geometry backend and
the untrained model; and writes ``results.json`` in ``--out``. The trained checkpoints stay in
``OUT/sft`` and ``OUT/grpo`` (default ``out/learning/``); evaluate them on any other viewpoint dataset with
``actial-ros-train evaluate --model out/learning/sft --viewpoint DATA --viewpoint-split '' --system-prompt ''
--max-pixels 3136`` (the recipe's system prompt and image size). ``--real-capture [LLFF_DIR]`` also evaluates
them on a real capture (default: the shared one; no transfer from simulation is expected).

Scales: ``--scale full`` (the recorded figures; see benchmarks/README.md for wall time and machine) and
``--scale ci`` (2 orbits, 64 rows, 300 steps: what ``test/training/test_learning.py`` trains, to check that
a model fits its own rows through the images; :func:`text_only_fit` is that test's blind rate).
``--blank-images`` trains and evaluates on blank images (every pixel grey): the control run.

    .venv/bin/python benchmarks/learning.py --out out/learning                 # the whole benchmark
    .venv/bin/python benchmarks/learning.py --out out/learning --stages evaluate --real-capture
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from actial_ros.backends.two_view_geometry import GeometryBackend
    from actial_ros.frame import CameraIntrinsics

REPO = Path(__file__).resolve().parents[1]
STAGES = ('render', 'build', 'model', 'curriculum', 'sft', 'grpo', 'evaluate', 'flywheel')

# Objects of pybullet_data: the training and the held-out sets are disjoint.
TRAIN_OBJECTS: tuple[str, ...] = (
    'duck_vhacd.urdf',
    'teddy_vhacd.urdf',
    'objects/mug.urdf',
    'r2d2.urdf',
    'lego/lego.urdf',
    'cube_small.urdf;texture=noise',
    'sphere2red.urdf',
    *(f'random_urdfs/{i:03d}/{i:03d}.urdf' for i in range(0, 60, 3)),
)
HELDOUT_OBJECTS: tuple[str, ...] = (
    'soccerball.urdf',
    'teddy_large.urdf;texture=noise',
    'block.urdf;texture=noise',
    'pr2_gripper.urdf',
    *(f'random_urdfs/{i:03d}/{i:03d}.urdf' for i in range(100, 130, 5)),
)


@dataclass(frozen=True)
class Scale:
    """How much of everything a run renders and trains."""

    train_runs: int
    heldout_runs: int
    pairs_per_run: int
    heldout_pairs_per_run: int
    max_steps: int
    grpo_steps: int
    image_size: int = 112
    max_pixels: int = 56 * 56
    frame_rate_hz: float = 4.0
    model_size: Literal['tiny', 'small'] = 'small'
    curriculum_steps: tuple[int, int, int] = (0, 0, 0)
    """SFT steps of the curriculum's stages before ``max_steps`` on the orbits (:func:`curriculum`): fixed-reference
    shifted crops, shifted crops, anchored orbits; ``(0, 0, 0)``: none (SFT from random weights)."""


SCALES: dict[str, Scale] = {
    'full': Scale(
        train_runs=80,
        heldout_runs=24,
        pairs_per_run=240,
        heldout_pairs_per_run=60,
        max_steps=800,
        grpo_steps=30,
    ),
    'ci': Scale(train_runs=2, heldout_runs=2, pairs_per_run=32, heldout_pairs_per_run=20, max_steps=300, grpo_steps=0),
    # The held-out CI test: the first 16 training and 8 held-out orbits of 'full' (run_specs draws them in
    # order), 500 steps; measured: the plateau ends at step 350-375 on these rows (docs/training.md).
    'ci_heldout': Scale(
        train_runs=16, heldout_runs=8, pairs_per_run=240, heldout_pairs_per_run=60, max_steps=500, grpo_steps=0
    ),
}


@dataclass(frozen=True)
class RunSpec:
    """One rendered orbit around one object at the origin."""

    name: str
    obj: str
    seed: int
    radius_m: float
    camera_height_m: float
    pitch_deg: float
    speed_deg_s: float
    start_deg: float
    fov_deg: float


def run_specs(objects: Sequence[str], count: int, seed: int, prefix: str) -> list[RunSpec]:
    """``count`` orbit runs cycling through ``objects``, with seeded radius, mount, direction and start."""
    rng = random.Random(seed)
    specs = []
    for i in range(count):
        specs.append(
            RunSpec(
                name=f'{prefix}_{i:03d}',
                obj=objects[i % len(objects)],
                seed=seed * 1000 + i,
                radius_m=rng.uniform(0.8, 1.6),
                camera_height_m=rng.uniform(0.0, 0.35),
                pitch_deg=rng.uniform(0.0, 15.0),
                speed_deg_s=rng.choice((-1.0, 1.0)) * rng.uniform(24.0, 36.0),
                start_deg=rng.uniform(0.0, 360.0),
                fov_deg=rng.uniform(50.0, 70.0),
            )
        )
    return specs


def _cli(*args: str, log: Path | None = None) -> str:
    """Run ``python -m MODULE ARGS`` (the package's commands); returns stdout+stderr, raises on failure."""
    command = [sys.executable, '-m', *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    output = result.stdout + result.stderr
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(' '.join(command) + '\n' + output)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed ({result.returncode}):\n{output[-4000:]}')
    return output


def render(specs: Sequence[RunSpec], folder: Path, scale: Scale, workers: int) -> None:
    """Render each run with ``actial-ros sim --bag`` into ``folder/NAME`` (skipping bags that exist)."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(spec: RunSpec) -> None:
        bag = folder / spec.name
        if (bag / 'recording.json').is_file():
            return
        if bag.exists():  # a run cut short: render it again
            shutil.rmtree(bag)
        duration = 360.0 / abs(spec.speed_deg_s)
        _cli(
            'actial_ros.cli',
            'sim',
            '--bag',
            str(bag),
            '--duration',
            f'{duration:.3f}',
            '--rate',
            str(scale.frame_rate_hz),
            '--size',
            f'{scale.image_size}x{scale.image_size}',
            '--fov',
            f'{spec.fov_deg:.2f}',
            '--objects',
            f'{spec.obj};x=0;y=0',
            '--backdrop',
            'panorama',
            '--floor',
            'checker',
            '--seed',
            str(spec.seed),
            '--radius',
            f'{spec.radius_m:.3f}',
            '--speed',
            f'{spec.speed_deg_s:.3f}',
            '--camera-pitch',
            f'{spec.pitch_deg:.2f}',
            '--camera-height',
            f'{spec.camera_height_m:.3f}',
            '-p',
            f'start_deg:={spec.start_deg:.2f}',
            '-p',
            'step_rate_hz:=20.0',
            '-p',
            'odometry_rate_hz:=20.0',
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, specs))


def bag_sources(folder: Path, specs: Sequence[RunSpec]) -> list[str]:
    """The ``--source`` of each rendered run's bag in ``folder``."""
    return [f'rosbag:{folder / spec.name}' for spec in specs]


def split_specs(scale: Scale, seed: int) -> tuple[list[RunSpec], list[RunSpec]]:
    """The training orbits (around ``TRAIN_OBJECTS``) and the held-out orbits (around the disjoint
    ``HELDOUT_OBJECTS``) of a benchmark run with ``seed``."""
    return (
        run_specs(TRAIN_OBJECTS, scale.train_runs, seed + 1, 'train'),
        run_specs(HELDOUT_OBJECTS, scale.heldout_runs, seed + 2, 'heldout'),
    )


def render_splits(
    out: Path, train_specs: Sequence[RunSpec], heldout_specs: Sequence[RunSpec], scale: Scale, workers: int
) -> None:
    """Render both splits' orbits into ``out/bags/train`` and ``out/bags/heldout`` (:func:`render`)."""
    render(train_specs, out / 'bags' / 'train', scale, workers)
    render(heldout_specs, out / 'bags' / 'heldout', scale, workers)


def build_splits(
    out: Path,
    train_specs: Sequence[RunSpec],
    heldout_specs: Sequence[RunSpec],
    scale: Scale,
    seed: int,
    workers: int,
) -> tuple[Path, Path]:
    """Build both splits' rendered bags into ``out/data/train`` and ``out/data/heldout`` (:func:`build`; pair
    seeds ``seed`` and ``seed + 7``); returns the two dataset folders."""
    train_data, heldout_data = out / 'data' / 'train', out / 'data' / 'heldout'
    build(
        bag_sources(out / 'bags' / 'train', train_specs),
        train_data,
        pairs_per_run=scale.pairs_per_run,
        seed=seed,
        workers=workers,
    )
    build(
        bag_sources(out / 'bags' / 'heldout', heldout_specs),
        heldout_data,
        pairs_per_run=scale.heldout_pairs_per_run,
        seed=seed + 7,
        workers=workers,
    )
    return train_data, heldout_data


def build(sources: Sequence[str], out: Path, *, pairs_per_run: int, seed: int, workers: int) -> None:
    """``build-viewpoint`` over ``sources`` (``KIND:PATH``) into ``out`` (all rows in the ``train`` split; one
    question per pair; ``pairs_per_run`` 0: every pair), unless ``out`` holds a build already."""
    if (out / 'data').is_dir() and any((out / 'data').glob('*.parquet')):
        return
    args = ['actial_ros.training.cli', 'build-viewpoint', '--out', str(out), '--overwrite', '--no-progress']
    for source in sources:
        args += ['--source', source]
    args += [
        '--max-pairs-per-object',
        str(pairs_per_run),
        '--per-pair',
        'one',
        '--test-size',
        '0',
        '--cot-fraction',
        '0',
        '--seed',
        str(seed),
        '--workers',
        str(workers),
    ]
    _cli(*args, log=out.parent / f'{out.name}.build.log')


def blank_images(data: Path) -> None:
    """Replace every image of the dataset in ``data`` by a uniform grey JPEG of the same size, in place: the
    control run, in which nothing can be seen and a learning test must fail."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from actial_ros.imaging import encode_jpeg

    grey: dict[tuple[int, int], bytes] = {}
    for shard in sorted((data / 'data').glob('*.parquet')):
        table = pq.read_table(shard)
        for column in ('image_1', 'image_2'):
            values = table.column(column).to_pylist()
            for value in values:
                with Image.open(io.BytesIO(value['bytes'])) as image:
                    size = image.size
                if size not in grey:
                    grey[size] = encode_jpeg(np.full((size[1], size[0], 3), 128, dtype=np.uint8), 90)
                value['bytes'] = grey[size]
            index = table.schema.get_field_index(column)
            table = table.set_column(
                index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type)
            )
        partial = shard.with_suffix('.partial')
        pq.write_table(table, partial)
        os.replace(partial, shard)  # never a half-written shard


def build_model(out: Path, scale: Scale, seed: int) -> None:
    """A random Qwen2.5-VL of the scale's size preset, its image processor at ``scale.max_pixels``."""
    if (out / 'config.json').is_file():
        return
    from actial_ros.training.tiny_model import build_tiny_qwen25vl

    build_tiny_qwen25vl(out, size=scale.model_size, seed=seed, max_pixels=scale.max_pixels)


def sft(out: Path, scale: Scale, *extra: str) -> None:
    """``actial-ros-train sft`` with the shipped from-scratch recipe on the training orbits, from the last
    curriculum stage's checkpoint when the scale has a curriculum (else from the random base model)."""
    start = out / 'curriculum' / CURRICULUM[-1] if any(scale.curriculum_steps) else out / 'base'
    sft_stage(start, out / 'data' / 'train', out / 'sft', scale.max_steps, scale, *extra, log=out / 'logs' / 'sft.log')


def sft_stage(model: Path, data: Path, output: Path, steps: int, scale: Scale, *extra: str, log: Path) -> None:
    """``actial-ros-train sft --config config/training/sft_from_scratch.yaml`` from ``model`` on ``data`` into
    ``output`` for ``steps`` steps (skipped when ``output`` holds a finished run)."""
    if (output / 'actial_sft_settings.yaml').is_file():
        return
    _cli(
        'actial_ros.training.cli',
        'sft',
        '--config',
        str(RECIPE),
        '--model',
        str(model),
        '--data',
        str(data),
        '--output-dir',
        str(output),
        '--max-steps',
        str(steps),
        '--max-pixels',
        str(scale.max_pixels),
        *extra,
        log=log,
    )


CURRICULUM = ('shift_fixed', 'shift', 'anchored')
"""The curriculum's stages in order (checkpoints in ``OUT/curriculum/NAME``)."""
SHIFT_CROP = 56
"""Crop size (px of the 112 px renders) of the curriculum's shifted pairs; shifts of a quarter to half of it: the
object moves by 25 to 50 % of the image width, a strong first-order cue."""


def anchored_rows(
    data: Path, specs: Sequence[RunSpec], out: Path, *, reference_deg: float, tolerance_deg: float
) -> int:
    """Write the rows of ``data`` whose FIRST camera faces one direction of the world to ``out`` (parquet).

    The first camera's azimuth on its orbit is ``start_deg + speed_deg_s * t`` (``t``: ``image_1_name``, the
    frame's stamp in ns since the run's start, as ``actial-ros sim`` stamps it); rows within ``tolerance_deg`` of
    ``reference_deg`` are kept. With the first view fixed, every label is a function of the second image alone.

    Returns:
        The number of rows written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_run = {spec.name: spec for spec in specs}
    table = pq.ParquetDataset(sorted(str(path) for path in (data / 'data').glob('*.parquet'))).read()
    keep = []
    for index, (run, stamp) in enumerate(
        zip(table.column('object_id').to_pylist(), table.column('image_1_name').to_pylist(), strict=True)
    ):
        spec = by_run[run]
        azimuth = spec.start_deg + spec.speed_deg_s * int(stamp) * 1e-9
        if abs((azimuth - reference_deg + 180.0) % 360.0 - 180.0) <= tolerance_deg:
            keep.append(index)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(pa.array(keep, type=pa.int64())), out / 'train-00000.parquet')
    return len(keep)


def _shift_benchmark() -> Any:
    """``benchmarks/learning_shift.py`` as a module (this file is also loaded by path, without ``benchmarks/`` on
    ``sys.path``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location('learning_shift', Path(__file__).with_name('learning_shift.py'))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def curriculum(
    out: Path, scale: Scale, train_specs: Sequence[RunSpec], heldout_specs: Sequence[RunSpec], seed: int
) -> None:
    """The from-scratch curriculum before SFT on the orbits (docs/training.md, "Learning from scratch").

    Three SFT stages with the same recipe, each from the previous checkpoint (``scale.curriculum_steps``):
    ``shift_fixed`` (crops of the training renders, the first window always the centred one: the label is a
    function of the second image alone), ``shift`` (both windows anywhere: a comparison of the two images), and
    ``anchored`` (training orbit pairs whose first camera faces azimuth 0 +- 15 degrees: the orbit's cues, again
    first-order). Each stage is meant to break a saddle the next one sits on from random weights (whether it
    does through this recipe: docs/training.md): in the general task every single-image feature predicts the
    label with opposite signs for the two images, so nothing is learnable before attention tells the images
    apart, and that attention gets no gradient before something is. Held-out rows of each stage's kind (from
    the held-out renders and orbits) go to ``OUT/curriculum/heldout``.
    """
    if not any(scale.curriculum_steps):
        return
    shift = _shift_benchmark()
    data, heldout = out / 'curriculum' / 'data', out / 'curriculum' / 'heldout'
    for offset, (name, fixed) in enumerate((('shift_fixed', True), ('shift', False))):
        for split, folder, renders, count in (
            ('train', data, out / 'data' / 'train', 4000 * (offset + 1)),
            ('test', heldout, out / 'data' / 'heldout', 600),
        ):
            rows = folder / name / 'train-00000.parquet'
            if not rows.is_file():
                made = shift.shift_rows(
                    renders,
                    split,
                    count,
                    seed=seed + 2 * offset + len(split),
                    crop=SHIFT_CROP,
                    min_shift=SHIFT_CROP // 4,
                    max_shift=SHIFT_CROP // 2,
                    fixed_reference=fixed,
                )
                shift._write(made, rows)
    for folder, source, specs in ((data, 'train', train_specs), (heldout, 'heldout', heldout_specs)):
        if not (folder / 'anchored' / 'train-00000.parquet').is_file():
            count = anchored_rows(
                out / 'data' / source, specs, folder / 'anchored', reference_deg=0.0, tolerance_deg=15.0
            )
            print(f'curriculum: {count} anchored {source} orbit rows', flush=True)
    model = out / 'base'
    for name, steps in zip(CURRICULUM, scale.curriculum_steps, strict=True):
        output = out / 'curriculum' / name
        sft_stage(model, data / name, output, steps, scale, log=out / 'logs' / f'curriculum_{name}.log')
        model = output
    print(json.dumps(curriculum_report(out, scale), indent=2), flush=True)


def curriculum_report(out: Path, scale: Scale) -> dict[str, dict[str, float]]:
    """Each curriculum checkpoint on the held-out rows of its own stage and, the last one, on the held-out
    orbits: the accuracy of the direction word (what the model saw) and of the answer letter."""
    shift = _shift_benchmark()
    report: dict[str, dict[str, float]] = {}
    cases = [(name, name, out / 'curriculum' / 'heldout' / name) for name in CURRICULUM]
    cases.append(('anchored on all held-out orbits', CURRICULUM[-1], out / 'data' / 'heldout'))
    for label, name, rows in cases:
        model = out / 'curriculum' / name
        if not (model / 'config.json').is_file():
            continue
        folder = out / 'eval' / 'curriculum' / label.replace(' ', '_')
        evaluate(model, rows, folder, scale, f'curriculum {label}')
        files = sorted(rows.glob('*.parquet')) or sorted((rows / 'data').glob('*.parquet'))
        report[label] = shift.direction_and_letter(files, folder / 'predictions.jsonl')
    return report


def grpo(out: Path, scale: Scale) -> None:
    """``actial-ros-train grpo`` from the SFT checkpoint on the viewpoint rows alone (no SAT)."""
    if scale.grpo_steps <= 0 or (out / 'grpo' / 'actial_grpo_settings.yaml').is_file():
        return
    _cli(
        'actial_ros.training.cli',
        'grpo',
        '--config',
        str(REPO / 'config' / 'training' / 'grpo_from_sft.yaml'),
        '--model',
        str(out / 'sft'),
        '--viewpoint-data',
        str(out / 'data' / 'train'),
        '--output-dir',
        str(out / 'grpo'),
        '--rollout-steps',
        str(scale.grpo_steps),
        '--max-pixels',
        str(scale.max_pixels),
        log=out / 'logs' / 'grpo.log',
    )


RECIPE = REPO / 'config' / 'training' / 'sft_from_scratch.yaml'


def recipe_system_prompt() -> str:
    """The system prompt of the from-scratch recipe (evaluation must use the one the model was trained with)."""
    import yaml

    return str(yaml.safe_load(RECIPE.read_text()).get('system_prompt') or '')


def evaluate(model: Path, data: Path, out: Path, scale: Scale, label: str, *, limit: int = 0) -> dict[str, Any]:
    """``actial-ros-train evaluate`` of ``model`` on the rows of ``data`` (every row, or the first ``limit``);
    returns its ``results.json`` (``out`` also holds ``predictions.jsonl``)."""
    if not (out / 'results.json').is_file():
        _cli(
            'actial_ros.training.cli',
            'evaluate',
            '--model',
            str(model),
            '--viewpoint',
            str(data),
            '--viewpoint-split',
            '',
            '--system-prompt',
            recipe_system_prompt(),
            '--max-new-tokens',
            '24',
            '--batch-size',
            '16',
            '--max-pixels',
            str(scale.max_pixels),
            '--label',
            label,
            '--out',
            str(out),
            '--no-progress',
            *(['--limit', str(limit)] if limit else []),
            log=out / 'evaluate.log',
        )
    return dict(json.loads((out / 'results.json').read_text()))


def blind_baselines(data: Path) -> dict[str, dict[str, float]]:
    """Accuracy of answering without looking, per question type and overall, on the rows of ``data``.

    ``majority``: always the split's most common label of that question type (the best blind constant);
    ``never_none``: a coin flip between left and right (never "no movement"), expected accuracy
    ``0.5 * share of rows whose truth is left or right``.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((data / 'data').glob('*.parquet')), columns=['question_type', 'answer_label'])
    rows = table.to_pylist()
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(str(row['question_type']), []).append(str(row['answer_label']))
    result: dict[str, dict[str, float]] = {}
    majority_correct = 0
    for name, labels in groups.items():
        top = Counter(labels).most_common(1)[0][1]
        majority_correct += top
        result[name] = {
            'total': len(labels),
            'majority': top / len(labels),
            'never_none': 0.5 * sum(1 for label in labels if label != 'none') / len(labels),
        }
    total = len(rows)
    result['overall'] = {
        'total': total,
        'majority': majority_correct / total,
        'never_none': 0.5 * sum(1 for row in rows if row['answer_label'] != 'none') / total,
    }
    return result


def geometry_accuracy(
    dataset: Path,
    intrinsics_of: Callable[[str], CameraIntrinsics],
    *,
    backend: GeometryBackend | None = None,
) -> dict[str, dict[str, float | int]]:
    """Per question_type and 'overall': {'total', 'correct', 'abstained', 'accuracy'} of the geometry backend.

    Every row of the viewpoint dataset ``dataset`` (``DATASET/data/*.parquet``, all splits; read with
    :func:`actial_ros.training.data.load_viewpoint`) is asked of
    :class:`actial_ros.backends.two_view_geometry.GeometryBackend` (default settings: SIFT, essential matrix,
    ``recoverPose``) exactly as the node asks it: a :class:`~actial_ros.frame.Pair` of two
    :class:`~actial_ros.frame.Frame` (the row's decoded images, ``intrinsics_of(object_id)`` as their
    intrinsics) and a :class:`~actial_ros.questions.Question` with the row's prompt, options and option
    labels in the row's order. The backend sees pixels and intrinsics only: the frames carry no pose
    (``t_world_camera=None``), the pair no relative pose, and the question no truth; the answered letter
    is compared with the row's ``answer``.

    An abstention counts as wrong and is also counted in ``abstained``. Rows of a type the backend cannot
    be asked (the optional ``yaw_bin`` probe) count as abstentions of their own type. Rows of one image
    pair (``--per-pair all``) share one pose estimate (the backend's cache, keyed by a digest of the pair).

    Args:
        dataset: the folder written by ``actial-ros-train build-viewpoint`` (or a folder of its parquet files).
        intrinsics_of: camera intrinsics of the source of an ``object_id``; they are rescaled by the
            backend when a row's images are a different size of the same aspect ratio.
        backend: the backend to score (default: ``GeometryBackend()``, created and closed here; one that
            is passed in is left open).

    Returns:
        ``{question_type: counts, ..., 'overall': counts}``; ``accuracy = correct / total`` (0.0 for no rows).

    Raises:
        actial_ros.errors.ConfigError: no parquet files, or not a viewpoint dataset.
        actial_ros.errors.ImageError: an undecodable image.
    """
    from actial_ros.training.data import image_bytes, load_viewpoint

    from actial_ros.backends.two_view_geometry import GeometryBackend
    from actial_ros.enums import QuestionType, ViewpointLabel
    from actial_ros.frame import Frame, Pair
    from actial_ros.imaging import decode_jpeg
    from actial_ros.questions import Question

    def stamp(name: Any) -> int:
        text = str(name or '')
        return int(text) if text.isdigit() else 0

    data_dir = dataset / 'data'
    rows = load_viewpoint([data_dir if data_dir.is_dir() else dataset], split=None)
    scored = backend if backend is not None else GeometryBackend()
    intrinsics: dict[str, CameraIntrinsics] = {}
    tally: dict[str, Counter[str]] = {}
    try:
        for row in rows:
            kind = str(row['question_type'])
            counts = tally.setdefault(kind, Counter())
            counts['total'] += 1
            try:
                question_type = QuestionType(kind)
            except ValueError:  # e.g. the yaw_bin probe: no core question, the backend cannot answer it
                counts['abstained'] += 1
                continue
            object_id = str(row['object_id'])
            if object_id not in intrinsics:
                intrinsics[object_id] = intrinsics_of(object_id)
            data_1, data_2 = image_bytes(row['image_1']), image_bytes(row['image_2'])
            # The backend caches estimates by pair id (and stamps, camera ids): the id is a digest of
            # what it estimates from (both images in order, the intrinsics), so rows of one pair share
            # an estimate and no other pair can hit it, even in a backend passed in and reused.
            digest = hashlib.sha1(repr(intrinsics[object_id]).encode())
            for data in (data_1, data_2):
                digest.update(hashlib.sha1(data).digest())
            pair_id = int.from_bytes(digest.digest()[:8], 'big')
            frame_1, frame_2 = (
                Frame(
                    image=decode_jpeg(data),
                    stamp_ns=stamp(row.get(f'{which}_name')),
                    intrinsics=intrinsics[object_id],
                    name=str(row.get(f'{which}_name') or which),
                )
                for data, which in ((data_1, 'image_1'), (data_2, 'image_2'))
            )
            question = Question(
                question_type=question_type,
                text=str(row['question']),
                options=tuple(str(option) for option in row['options']),
                option_labels=tuple(ViewpointLabel(str(label)) for label in row['option_labels']),
                truth=None,
            )
            reply = scored.answer(Pair(frame_1, frame_2, relative=None, pair_id=pair_id), question)
            if reply.letter is None:
                counts['abstained'] += 1
            elif reply.letter == str(row['answer']).strip().upper():
                counts['correct'] += 1
    finally:
        if backend is None:
            scored.close()
    tally['overall'] = sum(tally.values(), Counter())
    return {
        kind: {
            'total': counts['total'],
            'correct': counts['correct'],
            'abstained': counts['abstained'],
            'accuracy': counts['correct'] / counts['total'] if counts['total'] else 0.0,
        }
        for kind, counts in sorted(tally.items(), key=lambda item: (item[0] == 'overall', item[0]))
    }


def sim_intrinsics(size: int, fov_v_deg: float) -> Any:
    """Intrinsics of the simulator's square ``size`` camera with vertical field of view ``fov_v_deg``
    (:class:`actial_ros.simulation.camera.PinholeCamera`: ``fy = fx = (size / 2) / tan(fov / 2)``, centred)."""
    from actial_ros.simulation.camera import PinholeCamera

    return PinholeCamera(width=size, height=size, fov_v_deg=fov_v_deg).intrinsics


def text_only_fit(data: Path) -> float:
    """The best accuracy a model can reach on the rows of ``data`` without looking at the images: each distinct
    question text (question type and option order) answered with its most common letter in these rows.

    This is the blind rate for a model evaluated on its OWN training rows, which it can memorise by their text
    (with 64 rows of 18 distinct texts, about 0.75); on held-out rows the blind baselines are
    :func:`blind_baselines`.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(sorted((data / 'data').glob('*.parquet')), columns=['question', 'answer'])
    answers: dict[str, Counter[str]] = {}
    for row in table.to_pylist():
        answers.setdefault(str(row['question']), Counter())[str(row['answer'])] += 1
    best = sum(counts.most_common(1)[0][1] for counts in answers.values())
    return float(best) / max(1, int(table.num_rows))


def _accuracies(results: dict[str, Any]) -> dict[str, float]:
    scores = results['summary'].get('viewpoint', {})
    return {name: float(score['accuracy']) for name, score in scores.items()}


def reward_curve(log_history: Path) -> list[dict[str, float]]:
    """The GRPO format and accuracy rewards per logged step (from the trainer's ``trainer_state.json``)."""
    if not log_history.is_file():
        return []
    state = json.loads(log_history.read_text())
    curve = []
    for record in state.get('log_history', []):
        keys = [k for k in record if k.startswith('rewards/') and k.endswith('/mean')]
        if keys:
            point = {'step': float(record.get('step', 0))}
            point.update({k.split('/')[1]: float(record[k]) for k in keys})
            curve.append(point)
    return curve


QWEN_TEMPLATE_SYSTEM_PROMPT = 'You are a helpful assistant.'
"""The system message Qwen2.5-VL's chat template adds when a conversation has none: what the recipe trains
with (``system_prompt: ''``). The node's empty ``system_prompt`` means the Actial prompt instead, so the
flywheel passes this one explicitly."""

FLYWHEEL_BAGS = 8
"""Held-out orbits the flywheel replays (half turning each way, so that the blind baselines are near 50 %)."""


def flywheel(out: Path, heldout_specs: Sequence[RunSpec], model: Path) -> dict[str, Any]:
    """The trained checkpoint in the node, scored live: ``actial-ros demo --bag`` replays held-out orbits
    (``FLYWHEEL_BAGS``, half of each turning direction) into ``spatial_reasoner`` with the in-process
    ``transformers`` backend on ``model``; the node pairs the frames, asks, and scores every answer against
    the bag's odometry. Returns accuracy per question type over all replayed bags (the node's ``correct``
    field; every question with a truth counts, an unparsed, abstained or failed answer as wrong) beside those
    questions' blind baselines; writes
    ``OUT/flywheel/results.json`` and each bag's answers as ``OUT/flywheel/NAME.jsonl``.

    Raises:
        RuntimeError: a demo run failed.
    """
    from actial_ros.training.tiny_model import QWEN25_VL_CHAT_TEMPLATE

    assert QWEN_TEMPLATE_SYSTEM_PROMPT in QWEN25_VL_CHAT_TEMPLATE
    folder = out / 'flywheel'
    folder.mkdir(parents=True, exist_ok=True)
    turning = [spec for spec in heldout_specs if spec.speed_deg_s > 0][: FLYWHEEL_BAGS // 2]
    turning += [spec for spec in heldout_specs if spec.speed_deg_s < 0][: FLYWHEEL_BAGS - len(turning)]
    answers: list[dict[str, Any]] = []
    for spec in turning:
        answers_file = folder / f'{spec.name}.jsonl'
        if not answers_file.is_file():
            _cli(
                'actial_ros.cli',
                'demo',
                '--bag',
                str(out / 'bags' / 'heldout' / spec.name),
                '--backend',
                'transformers',
                '--transformers-model',
                str(model),
                '-p',
                f'system_prompt:={QWEN_TEMPLATE_SYSTEM_PROMPT}',
                '--out',
                str(answers_file),
                '--timeout',
                '600',
                '--no-progress',
                log=folder / f'{spec.name}.log',
            )
        answers += [json.loads(line) for line in answers_file.read_text().splitlines() if line.strip()]
    scored = [a for a in answers if a.get('kind', 'viewpoint') == 'viewpoint' and a.get('truth') is not None]
    groups: dict[str, list[dict[str, Any]]] = {}
    for answer in scored:
        groups.setdefault(str(answer['question_type']), []).append(answer)
    groups['overall'] = scored
    result: dict[str, Any] = {'bags': [spec.name for spec in turning], 'per_type': {}}
    for name, group in groups.items():
        labels = [str(a['truth']) for a in group]
        majority = max(labels.count(label) for label in set(labels)) / len(labels) if labels else 0.0
        result['per_type'][name] = {
            'questions': len(group),
            'accuracy': sum(bool(a.get('correct')) for a in group) / max(1, len(group)),
            'majority': majority,
            'never_none': 0.5 * sum(label != 'none' for label in labels) / max(1, len(labels)),
        }
    (folder / 'results.json').write_text(json.dumps(result, indent=2) + '\n')
    return result


def render_table(rows: dict[str, dict[str, float]], baselines: dict[str, dict[str, float]]) -> str:
    """A Markdown table: one column per question type and overall; one row per model or baseline."""
    kinds = [k for k in baselines if k != 'overall'] + ['overall']

    def line(name: str, values: Sequence[str]) -> str:
        return '| ' + ' | '.join([name, *values]) + ' |'

    def percent(scores: dict[str, float], key: str | None = None) -> list[str]:
        out = []
        for kind in kinds:
            value: Any = scores.get(kind, float('nan'))
            value = value[key] if key is not None and isinstance(value, dict) else value
            out.append(f'{100.0 * float(value):.1f}')
        return out

    lines = [
        line('held-out accuracy (%)', kinds),
        '|---|' + '---|' * len(kinds),
        line('items', [str(int(baselines[k]['total'])) for k in kinds]),
        line('blind: majority label', percent(baselines, 'majority')),  # type: ignore[arg-type]
        line('blind: never "no movement"', percent(baselines, 'never_none')),  # type: ignore[arg-type]
    ]
    lines += [line(name, percent(accuracy)) for name, accuracy in rows.items()]
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO / 'out' / 'learning')
    parser.add_argument('--scale', choices=sorted(SCALES), default='full')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES))
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--blank-images', action='store_true', help='grey images everywhere (the control run)')
    parser.add_argument(
        '--real-capture',
        type=Path,
        nargs='?',
        const=REPO.parent / 'shared' / 'data' / 'captures' / 'ethiopian_head',
        help='also evaluate on this real LLFF capture (default: the shared one); no transfer from sim is expected',
    )
    parser.add_argument(
        '--curriculum-steps',
        type=int,
        nargs=3,
        metavar=('SHIFT_FIXED', 'SHIFT', 'ANCHORED'),
        help='run the curriculum stages first (e.g. 800 400 300; not needed since the small preset initialises '
        'at 0.06: docs/training.md, "Learning from scratch")',
    )
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    if args.curriculum_steps:
        scale = dataclasses.replace(scale, curriculum_steps=tuple(args.curriculum_steps))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    train_specs, heldout_specs = split_specs(scale, args.seed)
    train_data, heldout_data = out / 'data' / 'train', out / 'data' / 'heldout'

    def stage(name: str, body: Callable[[], None]) -> None:
        if name in args.stages:
            start = time.monotonic()
            body()
            timings[name] = round(time.monotonic() - start, 1)
            print(f'{name}: {timings[name]} s', flush=True)

    stage('render', lambda: render_splits(out, train_specs, heldout_specs, scale, args.workers))

    def build_all() -> None:
        build_splits(out, train_specs, heldout_specs, scale, args.seed, args.workers)
        if args.blank_images and not (out / 'data' / 'BLANK').exists():
            for data in (train_data, heldout_data):
                blank_images(data)
            (out / 'data' / 'BLANK').write_text('images blanked by --blank-images\n')

    stage('build', build_all)
    stage('model', lambda: build_model(out / 'base', scale, args.seed))
    stage('curriculum', lambda: curriculum(out, scale, train_specs, heldout_specs, args.seed))
    stage('sft', lambda: sft(out, scale))
    stage('grpo', lambda: grpo(out, scale))
    if 'evaluate' in args.stages:
        start = time.monotonic()
        baselines = blind_baselines(heldout_data)
        rows: dict[str, dict[str, float]] = {}
        models = {'untrained': out / 'base', 'SFT': out / 'sft', 'SFT + GRPO': out / 'grpo'}
        models = {name: path for name, path in models.items() if (path / 'config.json').is_file()}
        for name, model in models.items():
            rows[name] = _accuracies(evaluate(model, heldout_data, out / 'eval' / model.name, scale, name))
        if args.real_capture is not None:
            real = out / 'data' / 'real'
            build([f'llff:{args.real_capture}'], real, pairs_per_run=0, seed=args.seed, workers=args.workers)
            for name, model in models.items():
                if name == 'untrained':
                    continue
                real_results = evaluate(model, real, out / 'eval' / f'real_{model.name}', scale, f'{name} (real)')
                total = real_results['summary']['viewpoint']['overall']['total']
                rows[f'{name} on the real capture ({total} items)'] = _accuracies(real_results)
        fovs = {spec.name: spec.fov_deg for spec in heldout_specs}
        geometry = geometry_accuracy(heldout_data, lambda name: sim_intrinsics(scale.image_size, fovs[name]))
        rows['geometry backend (SIFT + essential matrix)'] = {k: float(v['accuracy']) for k, v in geometry.items()}
        timings['evaluate'] = round(time.monotonic() - start, 1)
        table = render_table(rows, baselines)
        print(table)
        results = {
            'scale': asdict(scale),
            'machine': f'{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}',
            'date': time.strftime('%Y-%m-%d'),
            'timings_s': timings,
            'baselines': baselines,
            'accuracy': rows,
            'geometry': geometry,
            'grpo_rewards': reward_curve(out / 'grpo' / 'trainer_state.json'),
            'curriculum': curriculum_report(out, scale) if any(scale.curriculum_steps) else {},
            'table': table,
        }
        (out / 'results.json').write_text(json.dumps(results, indent=2) + '\n')
    if 'flywheel' in args.stages:
        start = time.monotonic()
        fly = flywheel(out, heldout_specs, out / 'sft')
        timings['flywheel'] = round(time.monotonic() - start, 1)
        print(f'flywheel: the node on {len(fly["bags"])} held-out orbits, live scores against odometry')
        for name, figures in fly['per_type'].items():
            print(
                f'  {name:20s} {figures["questions"]:4d} questions: {100 * figures["accuracy"]:.1f} % '
                f'(blind: majority {100 * figures["majority"]:.1f} %, never "no movement" '
                f'{100 * figures["never_none"]:.1f} %)'
            )
    print(json.dumps(timings))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""What a viewpoint build reports (step 6 of :mod:`actial_ros.training.dataset.build`): :class:`BuildReport`
(``build_report.json``: counted skips by reason, splits, counts, warnings), the dataset card
(:func:`dataset_card`, the ``README.md`` that ``datasets.load_dataset(OUT)`` reads) and the terminal
:func:`summary`; and the layout of a build's output folder (``data/``, ``.build/``, the two files).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from actial_ros.training.dataset.build_config import BuildConfig
from actial_ros.training.dataset.plan import ObjectPlan, ShardTask
from actial_ros.training.dataset.shard_stats import ShardStats, SplitCounts
from actial_ros.training.dataset.teacher import TeacherStatus
from actial_ros.training.dataset.viewpoint import YAW_BIN_QUESTION

__all__ = [
    'CARD_FILENAME',
    'DATA_DIRNAME',
    'REPORT_FILENAME',
    'STATE_DIRNAME',
    'BuildReport',
    'dataset_card',
    'make_report',
    'summary',
]

STATE_DIRNAME = '.build'
"""Resumption state inside the output folder: ``plan.json`` (the plan's fingerprint) and ``done/`` records."""
DATA_DIRNAME = 'data'
"""The parquet shards inside the output folder."""
REPORT_FILENAME = 'build_report.json'
CARD_FILENAME = 'README.md'


@dataclass
class BuildReport:
    """What a build did (also written as ``build_report.json``).

    Attributes:
        complete: every shard is written and the card is up to date.
        out: the output folder.
        shards_total, shards_written, shards_resumed: shards in the plan, written now, found done.
        objects: counters about objects (found, with pairs, per split, failed, rejected).
        failed_objects: ``(object id, path, error)`` of objects that could not be opened (first 100).
        rejected_paths: ``(path, reason)`` of folders of an objects source that are not captures.
        views: usable views and views skipped by reason.
        pairs: pair counters (candidates, chosen, ambiguous, trimmed for the test size, dropped).
        splits: per split: objects, pairs, rows, shards.
        counts: rows per split by question type, label, yaw bin and source.
        skips: every counted skip, by reason.
        teacher: teacher outcomes by status.
        warnings: things worth reading.
    """

    complete: bool
    out: str
    shards_total: int = 0
    shards_written: int = 0
    shards_resumed: int = 0
    objects: dict[str, int] = field(default_factory=dict)
    failed_objects: list[tuple[str, str, str]] = field(default_factory=list)
    rejected_paths: list[tuple[str, str]] = field(default_factory=list)
    views: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    teacher: dict[str, int] = field(default_factory=dict)
    cot: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + '\n'


def make_report(
    config: BuildConfig,
    plans: Sequence[ObjectPlan],
    rejected: list[tuple[str, str]],
    train: list[tuple[int, int]],
    test: list[tuple[int, int]],
    tasks: Sequence[ShardTask],
    stats: ShardStats,
    warnings: list[str],
    complete: bool,
) -> BuildReport:
    """The report of a build from its plans, split, shards and the summed counters of its written shards
    (:func:`actial_ros.training.dataset.shards.write_shard`)."""
    report = BuildReport(complete=complete, out=str(config.out), shards_total=len(tasks))
    report.warnings = list(warnings)
    failed = [p for p in plans if p.error is not None]
    report.failed_objects = [(p.ref.object_id, p.ref.path, p.error or '') for p in failed[:100]]
    report.rejected_paths = rejected[:100]
    report.objects = {
        'found': len(plans),
        'failed': len(failed),
        'rejected_paths': len(rejected),
        'without_pairs': sum(1 for p in plans if p.error is None and not len(p.pairs)),
        'train': len(train),
        'test': len(test),
    }
    views: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for plan in plans:
        views['usable'] += plan.views
        for reason, count in plan.view_skips.items():
            views[f'skipped_{reason}'] += count
        pairs.update(plan.pair_stats)
    pairs['test_trimmed'] = sum(len(plans[i].pairs) - used for i, used in test)
    skips: Counter[str] = Counter({f'view_{k[len("skipped_") :]}': v for k, v in views.items() if k != 'usable'})
    for key in ('ambiguous_translation', 'ambiguous_yaw'):
        skips[f'pair_{key}'] += pairs.get(key, 0)
    for reason, count in stats.skips.items():
        skips[reason.value] += count
    report.teacher = {status.value: n for status, n in sorted(stats.teacher.items()) if n}
    report.cot = {kind.value: n for kind, n in sorted(stats.cot.items()) if n}
    report.views = dict(sorted(views.items()))
    report.pairs = dict(sorted(pairs.items()))
    report.skips = {k: v for k, v in sorted(skips.items()) if v}
    report.counts = _counts(stats)
    for split, items in (('train', train), ('test', test)):
        split_tasks = [t for t in tasks if t.split == split]
        written = stats.splits.get(split, SplitCounts())
        report.splits[split] = {
            'objects': len(items),
            'pairs_planned': sum(used for _, used in items),
            'pairs': written.pairs,
            'rows': written.rows,
            'shards': len(split_tasks),
        }
    if report.failed_objects:
        report.warnings.append(f'{len(failed)} objects could not be opened (see failed_objects)')
    if report.teacher:
        rejected_count = sum(v for k, v in report.teacher.items() if k != TeacherStatus.ACCEPTED.value)
        if rejected_count:
            report.warnings.append(f'{rejected_count} teacher CoTs were rejected or failed (see teacher)')
    return report


def _counts(stats: ShardStats) -> dict[str, dict[str, int]]:
    """The report's ``counts``: ``{'SPLIT|KIND': {NAME: rows}}`` for the kinds ``type``, ``label`` (names
    ``TYPE|LABEL``), ``yaw_bin`` and ``source``, and ``{'SPLIT|rows': {'total': n}}``, the same for ``pairs``;
    non-zero counts only."""
    counts: dict[str, dict[str, int]] = {}
    for split, values in sorted(stats.splits.items()):
        kinds: dict[str, dict[str, int]] = {
            'label': {f'{t}|{label}': n for (t, label), n in values.labels.items()},
            'pairs': {'total': values.pairs},
            'rows': {'total': values.rows},
            'source': dict(values.sources),
            'type': dict(values.types),
            'yaw_bin': {str(b): n for b, n in values.yaw_bins.items()},
        }
        for kind, named in kinds.items():
            named = {name: n for name, n in sorted(named.items()) if n}
            if named:
                counts[f'{split}|{kind}'] = named
    return counts


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = [f'### {title}', '', '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def dataset_card(config: BuildConfig, report: BuildReport) -> str:
    """The ``README.md`` of a built dataset: YAML ``configs`` for ``datasets.load_dataset``, then how it was
    built and its counts (per split: question types, labels, yaw bins, sources). No dates."""
    splits = [s for s in ('train', 'test') if report.splits.get(s, {}).get('shards')]
    yaml_lines = ['---', 'configs:', '- config_name: default', '  data_files:']
    for split in splits:
        yaml_lines += [f'  - split: {split}', f'    path: {DATA_DIRNAME}/{split}-*.parquet']
    yaml_lines += [
        'task_categories:',
        '- visual-question-answering',
        'tags:',
        '- spatial-reasoning',
        '- viewpoint',
        '- actial',
        '---',
        '',
    ]
    edges = config.pairs.edges
    bins = ', '.join(f'{k + 1}: {edges[k]:.1f}-{edges[k + 1]:.1f}' for k in range(len(edges) - 1))
    lines = [
        '# Viewpoint dataset (Actial viewpoint learning)',
        '',
        'Built by `actial-ros-train build-viewpoint` (actial_ros). Each row is one multiple-choice question about a '
        'pair of views of one static object: did the camera move left or right (from the camera and from the '
        'object), did it rotate left or right'
        + (', and by how much (yaw-bin probe)' if YAW_BIN_QUESTION in config.question_types else '')
        + '. Labels and the exact '
        "relative pose (yaw, pitch, roll in degrees; `t12`, camera 2's centre in camera 1's optical frame) come "
        'from the capture poses or robot odometry, following actial_ros CONVENTIONS (optical frame x right, y '
        'down, z forward; positive yaw = turned right). Images are JPEG, at most '
        f'{config.max_width}x{config.max_height}: source JPEG files within that size as they are, other images '
        f'downscaled to fit where larger and encoded at quality {config.jpeg_quality}.',
        '',
        '## Build',
        '',
        f'- sources: {", ".join(f"`{s}`" for s in config.sources)}',
        f'- seed: {config.seed}; pairs with {config.pairs.min_yaw_deg:g} <= |yaw| <= {config.pairs.max_yaw_deg:g} '
        f'degrees, at most {config.pairs.max_pairs if config.pairs.max_pairs is not None else "all"} per object, '
        'balanced left/right and across six yaw bins',
        f'- yaw bins (degrees): {bins}',
        f'- question types: {", ".join(config.question_types)} ({config.per_pair} per pair)',
        f'- "no movement" threshold: {config.pairs.translation_threshold_rel:g} x object scale (captures), '
        f'{config.pairs.translation_threshold_m:g} m (bags); "no rotation": {config.pairs.yaw_threshold_deg:g} deg; '
        f'pairs within x{config.pairs.ambiguity_factor:g} of a threshold are left out',
        f'- split by object: test size {config.test_size} pairs',
        f'- chain of thought: {config.cot}' + (f' ({config.cot_fraction:g} of rows)' if config.cot != 'none' else ''),
        '',
        '## Counts',
        '',
        _table(
            'Splits',
            ('split', 'objects', 'pairs', 'rows', 'shards'),
            [
                (
                    s,
                    report.splits[s]['objects'],
                    report.splits[s]['pairs'],
                    report.splits[s]['rows'],
                    report.splits[s]['shards'],
                )
                for s in splits
            ],
        ),
    ]
    for split in splits:
        types = report.counts.get(f'{split}|type', {})
        lines.append(_table(f'{split}: question types', ('question type', 'rows'), sorted(types.items())))
        labels = report.counts.get(f'{split}|label', {})
        lines.append(
            _table(
                f'{split}: answer labels',
                ('question type', 'label', 'rows'),
                [(*key.split('|', 1), value) for key, value in sorted(labels.items())],
            )
        )
        yaw = report.counts.get(f'{split}|yaw_bin', {})
        lines.append(
            _table(
                f'{split}: yaw bins',
                ('bin', 'range (deg)', 'rows'),
                [
                    (k, f'{edges[int(k) - 1]:.1f}-{edges[int(k)]:.1f}', v)
                    for k, v in sorted(yaw.items(), key=lambda item: int(item[0]))
                ],
            )
        )
        sources = report.counts.get(f'{split}|source', {})
        lines.append(_table(f'{split}: sources', ('source', 'rows'), sorted(sources.items())))
    if report.skips:
        lines.append(_table('Counted skips', ('reason', 'count'), sorted(report.skips.items())))
    lines += [
        '## Columns',
        '',
        '`id`, `source`, `object_id`, `split`, `image_1`, `image_2` (JPEG), `image_1_name`, `image_2_name` (file '
        'names or bag stamps in ns), `question_type`, `question`, `options`, `option_labels`, `answer` (letter), '
        '`answer_label` (`left`/`right`/`none`; `left_k`/`right_k` for `yaw_bin`, k = bin 1-6), `yaw_deg`, '
        '`pitch_deg`, `roll_deg`, `t12`, `cot` (`<think> ... </think> <answer>X</answer>` or null).',
        '',
        '## Licence',
        '',
        'The images keep the licences of their sources (e.g. MVImgNet: CC BY 4.0 non-commercial terms of its '
        "authors; see each capture's attribution).",
        '',
    ]
    return '\n'.join(yaml_lines) + '\n'.join(lines)


def summary(report: BuildReport) -> str:
    """A few lines for the terminal."""
    lines = [f'{"complete" if report.complete else "INCOMPLETE"}: {report.out}']
    for split, values in report.splits.items():
        lines.append(
            f'  {split}: {values["objects"]} objects, {values["pairs"]} pairs, {values["rows"]} rows, '
            f'{values["shards"]} shards'
        )
    lines.append(
        f'  shards: {report.shards_written} written, {report.shards_resumed} already done, {report.shards_total} in all'
    )
    if report.skips:
        lines.append('  skipped: ' + ', '.join(f'{k}={v}' for k, v in report.skips.items()))
    if report.teacher:
        lines.append('  teacher: ' + ', '.join(f'{k}={v}' for k, v in sorted(report.teacher.items())))
    lines += [f'  warning: {w}' for w in report.warnings]
    return '\n'.join(lines)

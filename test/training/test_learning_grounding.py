"""The grounding diagnostic's rules and row makers (``benchmarks/learning_grounding.py``, issue 20): the match rule
reads a turn from where one image's side reappears in the other, the matched target lays that out as words with
verdicts, a subset keeps whole runs and question types, and the summary reports mean and worst over runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from script_modules import load_script

REPO = Path(__file__).resolve().parents[2]
RED, GREEN, BLUE = (0.9, 0.1, 0.1), (0.1, 0.9, 0.1), (0.1, 0.1, 0.9)


def _grounding() -> ModuleType:
    return load_script(REPO / 'benchmarks' / 'learning_grounding.py', 'learning_grounding')


def _turned_right() -> np.ndarray:
    """One pair's quarter colours, (1 row, 2 images, 2 quarter rows, 2 quarter columns, 3): the camera turned right,
    so image 2's left quarters show what image 1's right quarters showed (green) and its right quarters new wall."""
    first = np.array([[RED, GREEN], [RED, GREEN]])
    second = np.array([[GREEN, BLUE], [GREEN, BLUE]])
    return np.stack([first, second])[None]


def test_match_rule_reads_a_turn_from_the_side_that_reappears_and_flips_with_the_images() -> None:
    grounding = _grounding()
    pair = _turned_right()
    assert grounding.match_rule(pair)[0] > 0
    assert grounding.match_rule(pair[:, ::-1])[0] < 0  # images swapped: the mirrored turn
    assert grounding.match_rule(np.repeat(pair[:, :1], 2, axis=1))[0] == 0  # the same image twice: no turn


def test_matched_target_lays_the_two_comparisons_out_before_the_label() -> None:
    from actial_ros.enums import ViewpointLabel

    pytest.importorskip('datasets')
    from tiny_data import viewpoint_rows

    grounding = _grounding()
    row = viewpoint_rows(1, cot_every=0)[0]
    pair = _turned_right()[0].reshape(2, 4, 3)  # images, quarters (TL, TR, BL, BR), rgb
    centre = np.full(3, 0.5)
    made = grounding.grounded_rows([row], pair[None], centre, matched=True)[0]
    label = ViewpointLabel(str(row['answer_label'])).value
    # image 2's top-left (green) with image 1's top-right (green); image 2's top-right (blue) with image 1's top-left
    assert made['answer_label'] == f'green green same\nblue red different\n{label}'
    near = grounding.grounded_rows([row], pair[None], centre, matched=True, near_within=0.5)[0]
    assert near['answer_label'] == f'green green near\nblue red far\n{label}'
    short = grounding.grounded_rows([row], pair[None], centre, matched=True, fixed_length=True)[0]
    assert short['answer_label'] == f'gg same\nbr not\n{label}'  # one token per colour and verdict
    listed = grounding.grounded_rows([row], pair[None], centre, matched=True, fixed_length=True, option_list=True)[0]
    options = ' '.join(f'{chr(65 + i)}={label}' for i, label in enumerate(row['option_labels']))
    assert listed['answer_label'] == f'gg same\nbr not\n{label}\n{options}'  # the letter's lookup, restated
    assert grounding.OPTION_LINE.match(options) and not grounding.OPTION_LINE.match(label)
    assert made['answer'] == row['answer'] and made['question'] == row['question']


def test_subset_keeps_the_first_runs_and_the_named_question_types() -> None:
    grounding = _grounding()
    rows = [
        {'object_id': run, 'question_type': kind}
        for run in ('run_002', 'run_000', 'run_001')
        for kind in ('rotation', 'ego_translation')
    ]
    colours = np.arange(len(rows), dtype=float)
    kept, kept_colours = grounding.subset(rows, colours, runs=2, question_types=('rotation',))
    assert [(r['object_id'], r['question_type']) for r in kept] == [('run_000', 'rotation'), ('run_001', 'rotation')]
    assert kept_colours.tolist() == [2.0, 4.0]  # the colours stay with their rows
    assert grounding.subset(rows, colours)[0] == rows


def _results(turn: float, swapped: float, threads: int) -> dict[str, Any]:
    def section(label_word: float) -> dict[str, Any]:
        return {'by question type': {'rotation': {'label word': label_word, 'letter': 0.5, 'rows': 100}}}

    return {
        'readers of the words': {'majority': 0.52, "match rule on the top quarters' colour words, held out": 0.66},
        'held out': section(turn),
        'control: images swapped': section(swapped),
        'threads': threads,
        'machine': 'test',
    }


def test_summary_reports_the_mean_and_the_worst_run_not_the_best(tmp_path: Path) -> None:
    grounding = _grounding()
    outs = []
    for seed, (turn, swapped) in enumerate(((0.64, 0.62), (0.58, 0.60), (0.70, 0.66))):
        out = tmp_path / f'matched_s{seed}'
        out.mkdir()
        (out / 'results.json').write_text(json.dumps(_results(turn, swapped, 1 + seed % 2)))
        outs.append(out)
    summary = grounding.summarize(outs)
    assert summary['over runs']['turn word'] == {'mean': pytest.approx(0.64), 'worst': 0.58, 'runs': 3}
    assert summary['over runs']['turn word, images swapped (swapped truth)']['worst'] == 0.60
    assert 'turn word, grey images' not in summary['over runs']  # no run evaluated it
    assert [run['threads'] for run in summary['runs'].values()] == [1, 2, 1]
    with pytest.raises(FileNotFoundError):
        grounding.summarize([tmp_path / 'missing'])


def _scored(
    tmp_path: Path, name: str, truths: list[str], replies: list[str], task: str = 'grounded', option_list: bool = False
) -> dict[str, Any]:
    """``grounded_scores`` of ``replies`` (one think text per row) against rows whose think text is ``truths``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    grounding = _grounding()
    rows = tmp_path / f'{name}.parquet'
    ids = [f'row{i}' for i in range(len(truths))]
    pq.write_table(pa.table({'id': ids, 'answer_label': truths, 'question_type': ['rotation'] * len(ids)}), rows)
    predictions = tmp_path / f'{name}.jsonl'
    lines = [
        {'item_id': i, 'raw_text': f'<think>\n{r}\n</think>\n<answer>A</answer>', 'correct': True}
        for i, r in zip(ids, replies, strict=True)
    ]
    predictions.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    scores: dict[str, Any] = grounding.grounded_scores(rows, predictions, task=task, option_list=option_list)
    return scores


def test_a_reply_blind_to_the_images_order_scores_at_most_1_on_the_differing_words_of_a_pair_and_its_swap(
    tmp_path: Path,
) -> None:
    grounding = _grounding()
    first, second = 'red green blue red', 'green green red blue'  # top-right the same in both images: not counted
    pair, swapped = f'{first}\n{second}\nleft', f'{second}\n{first}\nright'
    follows = [_scored(tmp_path, n, [t], [t]) for n, t in (('held', pair), ('swap', swapped))]
    assert [s[grounding.DIFFERING_WORDS] for s in follows] == [1.0, 1.0]
    assert follows[0][f'{grounding.DIFFERING_WORDS}, count'] == 6
    blind = [_scored(tmp_path, n, [t], [pair]) for n, t in (('held_b', pair), ('swap_b', swapped))]  # same reply
    assert sum(s[grounding.DIFFERING_WORDS] for s in blind) == 1.0
    mixed = f'{first}\n{first}\nleft'  # image 1's words for both: right on one image of each differing pair
    assert (
        sum(_scored(tmp_path, f'm{i}', [t], [mixed])[grounding.DIFFERING_WORDS] for i, t in enumerate((pair, swapped)))
        == 1.0
    )
    majority = _scored(tmp_path, 'maj', [pair, pair, swapped], [pair] * 3)[f'{grounding.WORDS_BY_PLACE}, majority']
    third = round(2 / 3, 3)
    assert majority == [third, 1.0, third, third] * 2  # each place's most common word: 2 of 3 rows, or all


def test_scores_read_the_layout_they_are_told_and_refuse_rows_of_another(tmp_path: Path) -> None:
    grounding = _grounding()
    truth = 'gg same\nbr not\nleft\nA=right B=left C=none'
    scores = _scored(
        tmp_path, 'listed', [truth] * 2, [truth, 'gg same\nbb same\nright\nA=right B=left'], 'matched', True
    )
    assert scores['option line restated exactly'] == 0.5
    assert scores[grounding.WORDS_BY_PLACE] == [1.0, 1.0, 0.5, 0.5]  # gg same right; bb (br) same (not) wrong
    assert scores['by question type']['rotation']['label word'] == 0.5
    assert grounding.DIFFERING_WORDS not in scores  # the matched layout has no image lines to swap
    with pytest.raises(ValueError, match='not the matched layout'):
        _scored(tmp_path, 'unlisted', [truth], [truth], 'matched', False)  # an option line it was not told of
    with pytest.raises(ValueError, match='not the grounded layout'):
        _scored(tmp_path, 'short', ['red red red red\nleft'], ['red red red red\nleft'])
    with pytest.raises(ValueError, match='quadrant'):
        _scored(tmp_path, 'task', [truth], [truth], 'quadrant', True)

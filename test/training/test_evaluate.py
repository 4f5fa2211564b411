"""Evaluation: scoring on hand-made replies, every benchmark layout end to end, in-process and endpoint."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pytest.importorskip('trl')  # the train extra (torch, transformers, trl, peft)
pytest.importorskip('PIL')
from actial_ros.training.cli import main as cli_main
from actial_ros.training.evaluation.benchmarks import (
    PAPER_RESULTS,
    EvalItem,
    load_blink,
    load_cv_bench,
    load_viewpoint_items,
    load_vlmeval_tsv,
)
from actial_ros.training.evaluation.evaluate import EndpointGenerator, evaluate, render_table, score, summarize
from fake_openai_server import FakeOpenAIServer
from tiny_data import jpeg


def _item(benchmark: str, category: str, answer: str, i: int, **extra: str) -> EvalItem:
    return EvalItem(
        benchmark, category, str(i), 'Q?\nA. x\nB. y\nC. z\nD. w', (jpeg(i),), answer, 'ABCD', tuple(extra.items())
    )


def test_scoring_hand_made_replies() -> None:
    items = [_item('viewpoint', 'rotation', a, i) for i, a in enumerate('ABCDAB')]
    replies = [
        '<think>x</think> <answer>A</answer>',  # right, formatted
        '<answer>B</answer>',  # right, no think: not formatted
        'C',  # bare letter: right, not formatted
        '<think>x</think><answer>E</answer>',  # letter outside the options: unparsed
        '<think>x</think><answer>B</answer> more',  # wrong, not formatted
        '',  # nothing
    ]
    predictions = score(items, replies)
    assert [p.correct for p in predictions] == [True, True, True, False, False, False]
    assert [p.letter for p in predictions] == ['A', 'B', 'C', None, 'B', None]
    assert [p.well_formatted for p in predictions] == [True, False, False, True, False, False]
    stats = summarize(predictions)['viewpoint']
    assert stats['overall'].total == 6 and stats['overall'].correct == 3 and stats['overall'].unparsed == 2
    assert stats['overall'].accuracy == pytest.approx(0.5) and stats['overall'].format_rate == pytest.approx(2 / 6)
    assert stats['rotation'] == stats['overall']
    with pytest.raises(ValueError):
        score(items, replies[:2])


def test_benchmark_aggregates() -> None:
    cv = [
        _item('cv_bench', 'Count', 'A', 0, type='2D', source='ADE20K'),  # right
        _item('cv_bench', 'Count', 'A', 1, type='2D', source='COCO'),  # wrong
        _item('cv_bench', 'Relation', 'A', 2, type='2D', source='COCO'),  # right
        _item('cv_bench', 'Depth', 'A', 3, type='3D', source='Omni3D'),  # right
        _item('cv_bench', 'Distance', 'A', 4, type='3D', source='Omni3D'),  # wrong
    ]
    blink = [
        _item('blink', 'Multi-view_Reasoning', 'A', 5),
        _item('blink', 'Relative_Depth', 'A', 6),
        _item('blink', 'Relative_Depth', 'A', 7),
    ]
    replies = ['<answer>A</answer>', '<answer>B</answer>', 'A', 'A', 'B', 'A', 'A', 'B']
    summary = summarize(score(cv + blink, replies))
    # card: mean(mean(ADE20K 1.0, COCO 0.5), Omni3D 0.5) = 0.625; micro average would be 0.6
    assert summary['cv_bench']['avg'].accuracy == pytest.approx(0.625)
    assert summary['cv_bench']['overall'].accuracy == pytest.approx(0.6)
    assert summary['cv_bench']['Depth'].accuracy == 1.0
    assert summary['blink']['avg'].accuracy == pytest.approx((1.0 + 0.5) / 2)  # macro over subtasks
    table = render_table(summary, 'tiny')
    assert table.row_count == (4 + 2) + (2 + 2)  # categories + overall + avg
    assert PAPER_RESULTS['cv_bench/Depth']['Actial-7B'] == 88.5


def _write_benchmarks(root: Path) -> dict[str, Path]:
    from datasets import Dataset, Features, Image, List, Value

    cv_rows = [
        {
            'idx': i,
            'type': '3D' if i % 2 else '2D',
            'task': 'Depth' if i % 2 else 'Count',
            'image': {'bytes': jpeg(40 + i), 'path': None},
            'question': f'Which is closer? {i}',
            'choices': ['the lamp', 'the chair'],
            'answer': '(A)' if i % 2 else '(B)',
            'prompt': 'unused',
            'source': 'Omni3D' if i % 2 else 'COCO',
        }
        for i in range(4)
    ]
    cv_features = Features(
        {
            'idx': Value('int64'),
            'type': Value('string'),
            'task': Value('string'),
            'image': Image(),
            'question': Value('string'),
            'choices': List(Value('string')),
            'answer': Value('string'),
            'prompt': Value('string'),
            'source': Value('string'),
        }
    )
    cv = root / 'cv_bench' / 'test.parquet'
    cv.parent.mkdir(parents=True)
    Dataset.from_list(cv_rows, features=cv_features).to_parquet(str(cv))
    blink_features = Features(
        {
            'idx': Value('string'),
            'question': Value('string'),
            'sub_task': Value('string'),
            **{f'image_{k}': Image() for k in range(1, 5)},
            'choices': List(Value('string')),
            'answer': Value('string'),
        }
    )
    for subtask, count in (('Multi-view_Reasoning', 2), ('Relative_Depth', 3)):
        rows = [
            {
                'idx': f'val_{subtask}_{i}',
                'question': 'Is the camera moving left or right?',
                'sub_task': subtask,
                'image_1': {'bytes': jpeg(60 + i), 'path': None},
                'image_2': {'bytes': jpeg(70 + i), 'path': None},
                'image_3': None,
                'image_4': None,
                'choices': ['left', 'right'],
                'answer': '(A)',
            }
            for i in range(count)
        ]
        path = root / 'blink' / subtask / 'val-00000-of-00001.parquet'
        path.parent.mkdir(parents=True)
        Dataset.from_list(rows, features=blink_features).to_parquet(str(path))
    tsv = root / '3DSRBench.tsv'
    lines = ['index\tquestion\tA\tB\tC\tD\tanswer\tcategory\timage']
    for i in range(3):
        image = base64.b64encode(jpeg(80 + i)).decode()
        d = '' if i else 'behind'
        lines.append(
            f'{i}\tWhere is the cup? {i}\tleft\tright\tabove\t{d}\t{"ABC"[i]}\t{"height" if i else "location"}\t{image}'
        )
    two = json.dumps([base64.b64encode(jpeg(90)).decode(), base64.b64encode(jpeg(91)).decode()])
    lines.append(f'9\tSame object?\tyes\tno\t\t\tB\tmulti_view\t{two}')
    tsv.write_text('\n'.join(lines) + '\n')
    return {'cv': cv, 'blink': root / 'blink', 'tsv': tsv}


def test_loaders_read_the_published_layouts(tmp_path: Path, viewpoint_dir: Path) -> None:
    files = _write_benchmarks(tmp_path)
    cv = load_cv_bench([files['cv']])
    assert [i.answer for i in cv] == ['B', 'A', 'B', 'A'] and [i.category for i in cv] == ['Count', 'Depth'] * 2
    assert cv[0].question.endswith(
        "A. the lamp\nB. the chair\nAnswer with the option's letter from the given choices directly."
    )
    assert dict(cv[1].extra) == {'type': '3D', 'source': 'Omni3D'} and cv[0].letters == 'AB'
    blink = load_blink(files['blink'], subtasks=['Multi-view_Reasoning', 'Relative_Depth'], limit=2)
    assert len(blink) == 4 and all(len(i.images) == 2 for i in blink)
    tsv = load_vlmeval_tsv(files['tsv'])
    assert [i.letters for i in tsv] == ['ABCD', 'ABC', 'ABC', 'AB'] and [i.answer for i in tsv] == ['A', 'B', 'C', 'B']
    assert len(tsv[3].images) == 2 and tsv[0].category == 'location' and tsv[0].benchmark == '3dsrbench'
    view = load_viewpoint_items([viewpoint_dir])
    assert len(view) == 6 and all(i.letters == 'ABC' and len(i.images) == 2 for i in view)


def test_cli_evaluate_end_to_end_in_process(
    tiny_model: Path, viewpoint_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _write_benchmarks(tmp_path)
    out = tmp_path / 'eval'
    status = cli_main(
        [
            'evaluate',
            '--model',
            str(tiny_model),
            '--viewpoint',
            str(viewpoint_dir),
            '--cv-bench',
            str(files['cv']),
            '--blink',
            str(files['blink']),
            '--blink-subtasks',
            'Multi-view_Reasoning',
            'Relative_Depth',
            '--3dsrbench',
            str(files['tsv']),
            '--max-new-tokens',
            '8',
            '--batch-size',
            '3',
            '--out',
            str(out),
            '--label',
            'tiny',
            '--no-progress',
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert 'tiny' in printed and 'cv_bench' in printed and '3dsrbench' in printed
    results = json.loads((out / 'results.json').read_text())
    predictions = [json.loads(line) for line in (out / 'predictions.jsonl').read_text().splitlines()]
    assert len(predictions) == 6 + 4 + 5 + 4
    assert set(results['summary']) == {'viewpoint', 'cv_bench', 'blink', '3dsrbench'}
    for benchmark, categories in results['summary'].items():
        preds = [p for p in predictions if p['benchmark'] == benchmark]
        overall = categories['overall']
        assert overall['total'] == len(preds)
        assert overall['correct'] == sum(p['correct'] for p in preds)
        assert overall['unparsed'] == sum(p['letter'] is None for p in preds)
        for p in preds:
            assert p['correct'] == (p['letter'] == p['answer'])
    assert 'avg' in results['summary']['cv_bench'] and 'avg' in results['summary']['blink']
    assert results['paper']['blink/avg']['Actial-7B'] == 87.6
    assert cli_main(['evaluate', '--model', str(tiny_model), '--out', str(out)]) == 2  # no benchmark
    assert cli_main(['evaluate', '--viewpoint', str(viewpoint_dir)]) == 2  # no model


def test_endpoint_generator(viewpoint_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ACTIAL_API_KEY', 'test-key')
    items = load_viewpoint_items([viewpoint_dir])
    with FakeOpenAIServer() as server:
        server.reply = lambda body: f'<think>t</think> <answer>{"ABC"[len(server.requests) % 3]}</answer>'
        generator = EndpointGenerator(
            server.base_url, server.model, system_prompt='SYS', max_new_tokens=32, concurrency=2
        )
        predictions = evaluate(items, generator, progress=False)
        generator.close()
        bodies = list(server.requests)
    assert len(bodies) == len(items)
    for body in bodies:
        assert body['temperature'] == 0 and body['max_tokens'] == 32
        assert body['messages'][0] == {'role': 'system', 'content': 'SYS'}
        parts = body['messages'][1]['content']
        assert [p['type'] for p in parts] == ['image_url', 'image_url', 'text']
    assert all(p.well_formatted and p.letter is not None for p in predictions)
    assert sum(p.correct for p in predictions) == sum(p.letter == p.answer for p in predictions)


def test_settings_come_from_yaml_then_flags(tmp_path: Path) -> None:
    """``evaluate --config FILE``: defaults < YAML < flags, ``--3dsrbench`` and ``--no-progress`` as before."""
    import argparse

    from actial_ros.training import config as settings_io
    from actial_ros.training.evaluation.evaluate import EvaluateSettings, configure_parser

    settings = tmp_path / 'eval.yaml'
    settings.write_text('base_url: http://127.0.0.1:8000/v1\nserved_model: actial-7b\nmax_new_tokens: 64\n')
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(
        ['--config', str(settings), '--max-new-tokens', '16', '--3dsrbench', 'x.tsv', '--no-progress']
    )
    resolved = settings_io.resolve(EvaluateSettings, args)
    assert (resolved.base_url, resolved.served_model) == ('http://127.0.0.1:8000/v1', 'actial-7b')
    assert resolved.max_new_tokens == 16 and resolved.threedsrbench == 'x.tsv' and not resolved.progress
    assert resolved.viewpoint_split == 'test' and resolved.out == 'runs/eval'

"""Data for training: the hybrid cold-start mix, SAT layouts, image fitting and the settings files."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip('trl')  # the train extra (torch, transformers, trl, peft)
pytest.importorskip('PIL')
from actial_ros.training import config as settings_io
from actial_ros.training.fine_tuning.data import (
    build_grpo_dataset,
    build_sft_dataset,
    detect_sat_layout,
    fit_image_bytes,
    load_sat,
    load_viewpoint,
    mix_indices,
)
from actial_ros.training.fine_tuning.prompts import DEFAULT_MC_TARGET, multiple_choice_text
from actial_ros.training.fine_tuning.sft import SftSettings
from tiny_data import jpeg, viewpoint_rows, write_sat_array, write_viewpoint

from actial_ros.answers import matches_output_format
from actial_ros.errors import ConfigError
from actial_ros.imaging import decode_jpeg, encode_jpeg
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT


def test_mix_indices_ratio_and_determinism() -> None:
    mix = mix_indices(900, 10, 0.1, seed=3)
    counts = Counter(pool for pool, _ in mix)
    assert counts == {0: 900, 1: 100}  # every MC row once, CoT rows cycled up to 10 %
    assert sorted(i for pool, i in mix if pool == 0) == list(range(900))
    assert Counter(i for pool, i in mix if pool == 1) == dict.fromkeys(range(10), 10)
    assert mix == mix_indices(900, 10, 0.1, seed=3)
    assert mix != mix_indices(900, 10, 0.1, seed=4)
    fixed = mix_indices(50, 5, 0.2, total=40, seed=0)
    assert Counter(pool for pool, _ in fixed) == {0: 32, 1: 8}
    assert mix_indices(5, 0, 0.0) and all(pool == 0 for pool, _ in mix_indices(5, 0, 0.0))
    for bad in (1.0, -0.1):
        with pytest.raises(ConfigError):
            mix_indices(5, 5, bad)
    with pytest.raises(ConfigError):
        mix_indices(5, 0, 0.5)


def test_sft_mix_from_viewpoint_schema(tmp_path: Path) -> None:
    rows = viewpoint_rows(10, cot_every=2)
    rows[2]['cot'] = 'no tags at all'  # not in the format: skipped
    rows[4]['cot'] = rows[4]['cot'].replace(f'<answer>{rows[4]["answer"]}</answer>', '<answer>Z</answer>')  # wrong
    write_viewpoint(tmp_path / 'train.parquet', rows)
    write_viewpoint(tmp_path / 'test.parquet', viewpoint_rows(3, split='test'))
    mc = load_viewpoint([tmp_path], split='train')
    assert len(mc) == 10
    dataset = build_sft_dataset(
        mc, cot_ratio=0.5, system_prompt='SYS', mc_target_template=DEFAULT_MC_TARGET, total=12, seed=1
    )
    assert len(dataset) == 12
    kinds = Counter(dataset['kind'])
    assert kinds == {'mc': 6, 'cot': 6}
    by_id = {row['id']: row for row in rows}
    for sample in dataset:
        roles = [m['role'] for m in sample['messages']]
        assert roles == ['system', 'user', 'assistant']
        assert sample['messages'][0]['content'] == 'SYS'
        source = by_id[sample['id']]
        assert sample['messages'][1]['content'] == source['question']
        target = sample['messages'][2]['content']
        assert matches_output_format(target)
        if sample['kind'] == 'cot':
            assert target == source['cot']
            assert source['id'] not in (rows[2]['id'], rows[4]['id'])
        else:
            assert target == f'<think>\n</think>\n<answer>{source["answer"]}</answer>'
        assert len(sample['images']) == 2 and sample['images'][0].size == (64, 48)
    bare = build_sft_dataset(mc, cot_ratio=0.0, system_prompt='', mc_target_template='{letter}: {option}', seed=0)
    assert len(bare) == 10 and set(bare['kind']) == {'mc'}
    first = bare[0]
    assert [m['role'] for m in first['messages']] == ['user', 'assistant']
    source = by_id[first['id']]
    letter = source['answer']
    assert first['messages'][1]['content'] == f'{letter}: {source["options"][ord(letter) - ord("A")]}'
    with pytest.raises(ConfigError):
        load_viewpoint([tmp_path], split='validation')


def test_fit_image_bytes_keeps_small_and_downscales_large() -> None:
    small = jpeg(1, 96, 54)
    assert fit_image_bytes(small) is small
    large = encode_jpeg(np.full((1080, 1920, 3), 128, dtype=np.uint8))
    fitted = decode_jpeg(fit_image_bytes(large))
    assert fitted.shape == (540, 960, 3)
    assert decode_jpeg(fit_image_bytes(large, 100, 100)).shape == (56, 100, 3)


def _sat_verl(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            'data_source': 'sat',
            'prompt': [{'role': 'user', 'content': f'<image><image>Did the camera turn left or right? ({i})'}],
            'images': [{'bytes': jpeg(10 + i), 'path': None}, {'bytes': jpeg(20 + i), 'path': None}],
            'ability': 'spatial',
            'reward_model': {'style': 'rule', 'ground_truth': 'left' if i % 2 else 'right'},
            'extra_info': {'index': i, 'split': 'train'},
        }
        for i in range(4)
    ]
    pq.write_table(pa.Table.from_pylist(rows), str(path))


def _sat_flat(path: Path) -> None:
    from datasets import Dataset, Features, Image, List, Value

    rows = [
        {
            'images': [{'bytes': jpeg(30 + i), 'path': None}],
            'question': f'Which is closer? ({i})',
            'options': ['the chair', 'the table', 'the door'],
            'answer': ['(B)', 'the door', 'A'][i],
        }
        for i in range(3)
    ]
    features = Features(
        {
            'images': List(Image()),
            'question': Value('string'),
            'options': List(Value('string')),
            'answer': Value('string'),
        }
    )
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def test_sat_layouts(tmp_path: Path) -> None:
    for name in ('array', 'verl', 'flat'):
        (tmp_path / name).mkdir()
    write_sat_array(tmp_path / 'array' / 'SAT_train.parquet')
    _sat_verl(tmp_path / 'verl' / 'train-00000-of-00004.parquet')
    _sat_flat(tmp_path / 'flat' / 'train.parquet')

    array = load_sat([tmp_path / 'array'], seed=0)
    assert len(array) == 6
    for i, row in enumerate(array):
        lines = row['question'].splitlines()
        options = [line[3:] for line in lines[1:3]]
        assert sorted(options) == ['no', 'yes']
        truth = 'no' if i % 2 else 'yes'
        assert row['solution'] == 'AB'[options.index(truth)]
        assert row['question'] == multiple_choice_text(f'Is the sofa to the left of the lamp? ({i})', options)
        assert len(row['images']) == 1 + i % 2 and row['source'] == 'sat'
    assert load_sat([tmp_path / 'array'], seed=0)['solution'] == array['solution']  # seeded shuffle

    verl = load_sat([tmp_path / 'verl'])
    assert verl['question'][1] == 'Did the camera turn left or right? (1)'
    assert verl['solution'] == ['right', 'left', 'right', 'left'] and verl['category'] == ['sat'] * 4
    assert all(len(images) == 2 for images in verl['images'])

    flat = load_sat([tmp_path / 'flat'], layout='flat')
    assert flat['solution'] == ['B', 'C', 'A']

    assert detect_sat_layout(['image_bytes', 'question', 'answers', 'correct_answer']) == 'array'
    with pytest.raises(ConfigError):
        detect_sat_layout(['foo'])

    view = load_viewpoint([write_viewpoint(tmp_path / 'vp' / 'train.parquet', viewpoint_rows(6))])
    mixed = build_grpo_dataset(array, view, viewpoint_ratio=0.25, system_prompt='SYS', total=8, seed=0)
    assert Counter(mixed['source']) == {'sat': 6, 'viewpoint': 2}
    sample = mixed[0]
    assert [m['role'] for m in sample['prompt']] == ['system', 'user'] and sample['prompt'][0]['content'] == 'SYS'
    viewpoint_rows_in_mix = [r for r in mixed if r['source'] == 'viewpoint']
    assert all(r['solution'] in 'ABC' and len(r['images']) == 2 for r in viewpoint_rows_in_mix)
    with pytest.raises(ConfigError):
        build_grpo_dataset(array, None, viewpoint_ratio=0.5, system_prompt='')
    # Without SAT: the viewpoint rows alone, each once (or cycled up to total).
    alone = build_grpo_dataset(None, view, system_prompt='SYS', seed=0)
    assert Counter(alone['source']) == {'viewpoint': 6}
    assert sorted(alone['solution']) == sorted(str(a) for a in view['answer'])
    assert Counter(build_grpo_dataset(None, view, system_prompt='', total=9)['source']) == {'viewpoint': 9}
    with pytest.raises(ConfigError):
        build_grpo_dataset(None, None, system_prompt='')


def test_settings_yaml_then_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    settings_io.add_arguments(parser, SftSettings)
    config = tmp_path / 'sft.yaml'
    config.write_text('model: base\nlearning_rate: 1.0e-5\ncot_ratio: 0.2\ntrl: {max_grad_norm: 0.5}\n')
    args = parser.parse_args(
        [
            '--config',
            str(config),
            '--learning-rate',
            '2e-5',
            '--data',
            'a',
            'b',
            '--no-freeze-vision',
            '--trl',
            'optim=adamw_torch',
        ]
    )
    settings = settings_io.resolve(SftSettings, args)
    assert settings.model == 'base' and settings.learning_rate == 2e-5 and settings.cot_ratio == 0.2
    assert settings.data == ['a', 'b'] and settings.freeze_vision is False
    assert settings.trl == {'max_grad_norm': 0.5, 'optim': 'adamw_torch'}
    assert settings.num_train_epochs == 2.0 and settings.warmup_steps == 50  # paper defaults untouched
    config.write_text('model: base\nlearning_rat: 1\n')
    with pytest.raises(ConfigError, match='learning_rat'):
        settings_io.resolve(SftSettings, parser.parse_args(['--config', str(config)]))
    with pytest.raises(ConfigError):
        settings_io.resolve(SftSettings, parser.parse_args([]))  # model is required


def test_shipped_yaml_hold_the_paper_defaults() -> None:
    import yaml
    from actial_ros.training.fine_tuning.grpo import GrpoSettings, schedule

    root = Path(__file__).resolve().parents[2] / 'config' / 'training'
    sft: dict[str, Any] = yaml.safe_load((root / 'sft.yaml').read_text())
    assert (sft['num_train_epochs'], sft['learning_rate'], sft['global_batch_size'], sft['warmup_steps']) == (
        2,
        5e-6,
        128,
        50,
    )
    assert sft['cot_ratio'] == 0.1
    assert sft['system_prompt'] == DEFAULT_SYSTEM_PROMPT
    grpo: dict[str, Any] = yaml.safe_load((root / 'grpo.yaml').read_text())
    assert grpo['num_generations'] == 16 and grpo['learning_rate'] == 1e-6 and grpo['beta'] == 0.01
    assert grpo['epsilon'] == 0.2 and grpo['max_completion_length'] == 4096 and grpo['rollout_steps'] == 150
    assert grpo['reward_weights'] == [0.5, 0.5] and grpo['system_prompt'] == DEFAULT_SYSTEM_PROMPT
    assert (grpo['max_image_width'], grpo['max_image_height']) == (960, 540)
    shipped = (
        (root / 'sft.yaml', SftSettings),
        (root / 'grpo.yaml', GrpoSettings),
        (root / 'sft_from_scratch.yaml', SftSettings),
        (root / 'grpo_from_sft.yaml', GrpoSettings),
    )
    for path, cls in shipped:
        parser = argparse.ArgumentParser()
        settings_io.add_arguments(parser, cls)
        settings_io.resolve(cls, parser.parse_args(['--config', str(path), '--model', 'm']))  # every key is known
    parser = argparse.ArgumentParser()
    settings_io.add_arguments(parser, GrpoSettings)
    paper = settings_io.resolve(GrpoSettings, parser.parse_args(['--config', str(root / 'grpo.yaml'), '--model', 'm']))
    # 1024 prompts x 16 per rollout, mini-batches of 256 prompts, 8 GPUs x 8 completions per pass
    assert schedule(paper, processes=8) == {
        'gradient_accumulation_steps': 64,
        'steps_per_generation': 256,
        'max_steps': 600,
    }


def test_accelerate_configs_parse() -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    root = Path(__file__).resolve().parents[2] / 'config' / 'accelerate'
    kinds = {path.stem: ClusterConfig.from_yaml_file(str(path)) for path in sorted(root.glob('*.yaml'))}
    assert set(kinds) == {
        'single_gpu',
        'multi_gpu_zero3',
        'multi_gpu_fsdp',
        'multi_node',
        'cpu_2proc',
        'cpu_2proc_zero3',
    }
    assert kinds['cpu_2proc'].num_processes == 2  # run in CI: test_multiprocess.py
    assert kinds['cpu_2proc_zero3'].deepspeed_config['zero_stage'] == 3 and not kinds['cpu_2proc_zero3'].use_cpu
    assert kinds['multi_gpu_zero3'].deepspeed_config['zero_stage'] == 3
    assert str(kinds['multi_gpu_fsdp'].distributed_type).endswith('FSDP')
    assert kinds['multi_node'].num_machines > 1 and kinds['single_gpu'].num_processes == 1


def test_viewpoint_row_has_the_schema_columns_and_round_trips(tmp_path: Path) -> None:
    import random

    import datasets
    from actial_ros.training.dataset.schema import COLUMNS, viewpoint_row
    from actial_ros.training.dataset.viewpoint import RowQuestion

    from actial_ros.enums import QuestionType, ViewpointLabel
    from actial_ros.questions import make_question

    question = RowQuestion.from_question(make_question(QuestionType.ROTATION, ViewpointLabel.LEFT, random.Random(0)))
    fields: dict[str, Any] = {
        'row_id': 'r/0',
        'source': 'test',
        'object_id': 'o',
        'split': 'train',
        'image_1': jpeg(1),
        'image_2': None,
        'image_1_name': 'a.jpg',
        'image_2_name': 'b.jpg',
        'question': question,
        'yaw_deg': -12,
        'pitch_deg': 0.5,
        'roll_deg': 0,
        't12': (0.1, 0, 0),
    }
    row = viewpoint_row(**fields)
    assert tuple(row) == COLUMNS
    write_viewpoint(tmp_path / 'train-00000.parquet', [row])
    back = datasets.load_dataset('parquet', data_files=str(tmp_path / '*.parquet'))['train'][0]
    assert back['answer_label'] == 'left' and back['answer'] == question.answer
    assert back['yaw_deg'] == -12.0 and back['t12'] == [0.1, 0.0, 0.0] and back['image_2'] is None
    assert back['cot'] is None and back['image_1'].size == (64, 48)
    with pytest.raises(ValueError, match='t12 needs 3'):
        viewpoint_row(**{**fields, 't12': (0.0, 0.0)})

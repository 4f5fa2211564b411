"""SFT with the hybrid cold start on the tiny model: loss goes down, assistant-only labels, LoRA, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip('trl')  # the train extra (torch, transformers, trl, peft)
pytest.importorskip('PIL')
import torch
from actial_ros.training.cli import main as cli_main
from actial_ros.training.fine_tuning.sft import build_trainer, train
from tiny_data import sft_settings


def test_full_sft_lowers_the_loss(sft_full: Any) -> None:
    losses = [r['loss'] for r in sft_full.log_history if 'loss' in r]
    assert len(losses) == 12
    assert losses[-1] < 0.35 * losses[0]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert sft_full.global_step == 60
    assert sft_full.num_samples == 13 and sft_full.num_cot == 1  # 12 MC rows + 10 % CoT
    out = sft_full.output_dir
    assert (out / 'model.safetensors').is_file() and (out / 'chat_template.jinja').is_file()
    assert (out / 'actial_sft_settings.yaml').is_file()


def test_vision_tower_frozen_by_default(sft_full: Any, tiny_model: Path) -> None:
    from safetensors.torch import load_file

    before = load_file(str(tiny_model / 'model.safetensors'))
    after = load_file(str(sft_full.output_dir / 'model.safetensors'))
    changed = {name for name, value in before.items() if not torch.equal(value, after[name])}
    # Saved under Qwen's checkpoint names (visual.*, model.layers.*), as vLLM reads them.
    assert changed and not any(name.startswith('visual.') for name in changed)
    assert any(name.startswith('model.layers.') for name in changed)


def test_labels_cover_the_assistant_turn_only(tiny_model: Path, viewpoint_dir: Path, tmp_path: Path) -> None:
    trainer = build_trainer(sft_settings(tiny_model, viewpoint_dir, tmp_path / 'run'))
    dataset = trainer.train_dataset
    samples = [dataset[i] for i in range(4)]
    batch = trainer.data_collator([dict(s) for s in samples])
    tokenizer = trainer.processing_class.tokenizer
    for row, (ids, labels, mask) in enumerate(
        zip(batch['input_ids'], batch['labels'], batch['attention_mask'], strict=True)
    ):
        target = samples[row]['messages'][-1]['content']
        supervised = ids[labels != -100]
        assert torch.equal(labels[labels != -100], supervised)
        assert tokenizer.decode(supervised) == target + '<|im_end|>\n'
        prompt = tokenizer.decode(ids[(labels == -100) & (mask == 1)])
        assert prompt.endswith('<|im_start|>assistant\n') and '<|image_pad|>' in prompt
        assert not bool((labels[mask == 0] != -100).any())


def test_lora_sft_writes_an_adapter(sft_lora: Any) -> None:
    out = sft_lora.output_dir
    config = json.loads((out / 'adapter_config.json').read_text())
    assert config['r'] == 8 and 'language_model' in config['target_modules']
    assert (out / 'adapter_model.safetensors').is_file() and not (out / 'model.safetensors').exists()
    losses = [r['loss'] for r in sft_lora.log_history if 'loss' in r]
    assert losses[-1] < losses[0]


def test_resume_from_checkpoint(tiny_model: Path, viewpoint_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / 'run'
    first = train(sft_settings(tiny_model, viewpoint_dir, out, max_steps=2, save_steps=2, logging_steps=1))
    assert first.global_step == 2 and (out / 'checkpoint-2').is_dir()
    resumed = train(
        sft_settings(
            tiny_model, viewpoint_dir, out, max_steps=4, save_steps=2, logging_steps=1, resume_from_checkpoint='latest'
        )
    )
    steps = [r['step'] for r in resumed.log_history if 'loss' in r]
    assert resumed.global_step == 4 and steps == [1, 2, 3, 4]  # history of the first run carried over
    first_losses = [r['loss'] for r in first.log_history if 'loss' in r]
    assert [r['loss'] for r in resumed.log_history if 'loss' in r][:2] == first_losses
    with pytest.raises(Exception, match='no checkpoint'):
        train(sft_settings(tiny_model, viewpoint_dir, out, resume_from_checkpoint=str(tmp_path / 'missing')))


def test_cli_sft(tiny_model: Path, viewpoint_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).resolve().parents[2] / 'config' / 'training' / 'sft.yaml'
    out = tmp_path / 'cli'
    status = cli_main(
        [
            'sft',
            '--config',
            str(config),
            '--model',
            str(tiny_model),
            '--data',
            str(viewpoint_dir),
            '--output-dir',
            str(out),
            '--max-steps',
            '2',
            '--global-batch-size',
            '2',
            '--per-device-batch-size',
            '2',
            '--finetuning',
            'lora',
            '--lora-rank',
            '4',
            '--no-gradient-checkpointing',
            '--logging-steps',
            '1',
        ]
    )
    assert status == 0
    assert 'SFT done: 2 steps' in capsys.readouterr().out
    assert (out / 'adapter_config.json').is_file()
    assert cli_main(['sft', '--model', str(tiny_model), '--output-dir', str(out)]) == 2  # no data


def test_the_checkpoint_carries_its_recipe(sft_full: Any, viewpoint_dir: Path, tmp_path: Path) -> None:
    """SFT writes actial_recipe.json and a model card of its own; evaluation and the in-process backend take the
    system prompt from it when none is given, and a flag still overrides it (issue 20, item 6)."""
    import shutil

    from actial_ros.backends.transformers_backend import TransformersBackend
    from actial_ros.recipe import CheckpointRecipe, read_recipe, write_recipe

    out = sft_full.output_dir
    recipe = read_recipe(out)
    assert recipe is not None
    assert (recipe.stage, recipe.steps, recipe.data) == ('sft', 60, (str(viewpoint_dir),))
    settings = sft_settings(Path(recipe.base_model), viewpoint_dir, out)
    assert recipe.system_prompt == settings.system_prompt and recipe.max_pixels == settings.max_pixels
    card = (out / 'README.md').read_text()
    assert card.startswith(f'# {out.name}: a Qwen2.5-VL checkpoint trained by actial_ros (SFT)')
    assert 'None' not in card.splitlines()[0] and 'actial_recipe.json' in card
    # A copy trained (as it were) with no system prompt: evaluate and the backend send none without a flag.
    copy = tmp_path / 'no_prompt'
    shutil.copytree(out, copy)
    write_recipe(CheckpointRecipe(stage='sft', system_prompt=''), copy)
    common = ['--viewpoint', str(viewpoint_dir), '--limit', '2', '--max-new-tokens', '4', '--no-progress']
    assert cli_main(['evaluate', '--model', str(copy), '--out', str(tmp_path / 'own'), *common]) == 0
    assert json.loads((tmp_path / 'own' / 'results.json').read_text())['system_prompt'] == ''
    flagged = ['--system-prompt', 'Answer.', '--out', str(tmp_path / 'flag')]
    assert cli_main(['evaluate', '--model', str(copy), *flagged, *common]) == 0
    assert json.loads((tmp_path / 'flag' / 'results.json').read_text())['system_prompt'] == 'Answer.'
    backend = TransformersBackend(model=str(copy), device='cpu')
    try:
        assert backend._system_prompt == ''
    finally:
        backend.close()
    assert TransformersBackend(model=str(copy), device='cpu', system_prompt='Answer.')._system_prompt == 'Answer.'

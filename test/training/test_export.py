"""Export: a merged LoRA adapter gives the same logits as the unmerged model; the directory is self-contained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip('trl')  # the train extra (torch, transformers, trl, peft)
pytest.importorskip('PIL')
import torch
from actial_ros.training.cli import main as cli_main
from actial_ros.training.fine_tuning.export import export_model
from actial_ros.training.fine_tuning.modeling import load_model, load_processor
from actial_ros.training.fine_tuning.prompts import structured_messages


def _inputs(model_dir: Path) -> Any:
    from PIL import Image

    processor = load_processor(model_dir)
    text = processor.apply_chat_template(
        structured_messages('Which way?', system_prompt='S', num_images=2), add_generation_prompt=True, tokenize=False
    )
    images = [Image.new('RGB', (70, 50), (200, 10 * i, 40)) for i in range(2)]
    return processor(text=[text + '<think> left </think>'], images=images, return_tensors='pt')


def test_merged_lora_matches_the_adapter(sft_lora: Any, tiny_model: Path, tmp_path: Path) -> None:
    from peft import PeftModel

    adapter = sft_lora.output_dir
    out = export_model(adapter, tmp_path / 'export', dtype='float32')
    assert not (out / 'adapter_config.json').exists()
    names = {p.name for p in out.iterdir()}
    assert {
        'config.json',
        'model.safetensors',
        'tokenizer.json',
        'chat_template.jinja',
        'preprocessor_config.json',
    } <= names
    assert json.loads((out / 'preprocessor_config.json').read_text())['processor_class'] == 'Qwen2_5_VLProcessor'
    inputs = _inputs(out)
    with torch.no_grad():
        unmerged = PeftModel.from_pretrained(load_model(tiny_model, dtype='float32'), str(adapter)).eval()
        expected = unmerged(**inputs).logits
        merged: Any = load_model(out, dtype='float32')  # PreTrainedModel's eval() is untyped in transformers
        got = merged.eval()(**inputs).logits
        reference: Any = load_model(tiny_model, dtype='float32')
        base = reference.eval()(**inputs).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(base, expected, atol=1e-3)  # the adapter did change the model
    assert merged.config.image_token_id == load_processor(out).tokenizer.convert_tokens_to_ids('<|image_pad|>')


def test_cli_export_full_checkpoint_in_bfloat16(
    sft_full: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / 'full'
    assert cli_main(['export', '--checkpoint', str(sft_full.output_dir), '--out', str(out)]) == 0
    assert 'vllm serve' in capsys.readouterr().out
    model = load_model(out, dtype='auto')
    assert json.loads((out / 'config.json').read_text())['dtype'] == 'bfloat16'
    assert model is not None and (out / 'tokenizer_config.json').is_file()
    assert cli_main(['export', '--checkpoint', str(tmp_path / 'missing'), '--out', str(out)]) == 2


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ('sft', 'grpo', 'evaluate', 'export'):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, '--help'])
        assert exit_info.value.code == 0
        assert '--' in capsys.readouterr().out

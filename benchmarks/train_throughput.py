"""Throughput of SFT and GRPO steps and of vLLM rollouts on the real Qwen2.5-VL architecture (random weights).

The model is built from the published Qwen2.5-VL-7B (or 3B) configuration with random weights
(:func:`actial_ros.training.fine_tuning.tiny_model.save_random_qwen25vl`: no download), so step times, tokens/s and
memory hold for the real model; only the tokenizer is the tiny local one (so text is more tokens than with
Qwen's vocabulary; image tokens, which dominate, are the same). The data are synthetic viewpoint samples:
two images of ``--image-size`` (default 960x540, the paper's limit: resized to 952x532, 38x68 patches of 14
pixels merged 2x2, i.e. 646 image tokens per image) and the real question templates.

Figures printed and written as JSON (``--out``): SFT samples/s, tokens/s and peak GPU memory per step;
GRPO completions/s and generated tokens/s (plain ``generate`` rollouts, random weights so every completion
runs to ``--completion-tokens``); vLLM rollout tokens/s (``--modes vllm``, needs ``vllm`` installed).

GPU::

    python benchmarks/train_throughput.py --size 7b --modes sft grpo vllm --out benchmarks/results/h100.json

CPU smoke test (tiny model, seconds)::

    python benchmarks/train_throughput.py --size tiny --steps 2 --image-size 64x48 --completion-tokens 16
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _rows(count: int, width: int, height: int, seed: int = 0) -> list[dict[str, Any]]:
    from actial_ros.training.dataset.schema import viewpoint_row
    from actial_ros.training.dataset.viewpoint import RowQuestion

    from actial_ros.enums import QuestionType, ViewpointLabel
    from actial_ros.imaging import encode_jpeg
    from actial_ros.questions import make_question

    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        kind = list(QuestionType)[i % 3]
        label = list(ViewpointLabel)[i % 3]
        question = make_question(kind, label, rng)
        images = [encode_jpeg(gen.integers(0, 255, (height, width, 3), dtype=np.uint8), 90) for _ in range(2)]
        cot = (
            '<think> ' + ' '.join(['Step: the camera moved and turned while the object stayed.'] * 12) + ' </think> '
            f'<answer>{question.answer_letter}</answer>'
        )
        rows.append(
            viewpoint_row(
                row_id=f'bench/{i}',
                source='bench',
                object_id=f'o{i}',
                split='train',
                image_1=images[0],
                image_2=images[1],
                image_1_name='a',
                image_2_name='b',
                question=RowQuestion.from_question(question),
                yaw_deg=30.0,
                pitch_deg=0.0,
                roll_deg=0.0,
                t12=(0.1, 0.0, 0.0),
                cot=cot,
            )
        )
    return rows


class _Timer:
    """A TrainerCallback recording the wall time of every optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.times: list[float] = []

        class Callback(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                outer._start = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                outer.times.append(time.perf_counter() - outer._start)

        self.callback = Callback()
        self._start = 0.0


def _peak_gb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def bench_sft(model_dir: Path, data_dir: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from actial_ros.training.fine_tuning.sft import SftSettings, build_trainer

    settings = SftSettings(
        model=str(model_dir),
        data=[str(data_dir)],
        output_dir=str(work / 'sft'),
        cot_ratio=0.5,
        global_batch_size=args.batch,
        per_device_batch_size=args.batch,
        max_steps=args.steps + 1,
        warmup_steps=0,
        logging_steps=1000,
        save_steps=10**6,
        report_to=['none'],
        finetuning=args.finetuning,
        freeze_vision=True,
        max_length=None,
        dtype=args.dtype,
        attn_implementation=args.attn,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    _reset_peak()
    trainer = build_trainer(settings)
    timer = _Timer()
    trainer.add_callback(timer.callback)
    batch = trainer.data_collator([dict(trainer.train_dataset[i]) for i in range(args.batch)])
    tokens_per_sample = float(batch['attention_mask'].sum()) / args.batch
    trainer.train()
    step_s = float(np.mean(timer.times[1:])) if len(timer.times) > 1 else float(timer.times[0])
    return {
        'step_s': round(step_s, 4),
        'samples_per_s': round(args.batch / step_s, 3),
        'tokens_per_sample': round(tokens_per_sample, 1),
        'tokens_per_s': round(args.batch * tokens_per_sample / step_s, 1),
        'peak_gpu_gb': _peak_gb(),
        'batch': args.batch,
        'finetuning': args.finetuning,
    }


def bench_grpo(model_dir: Path, sat_dir: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from actial_ros.training.fine_tuning.grpo import GrpoSettings, build_trainer

    prompts = max(1, args.batch // args.generations)
    settings = GrpoSettings(
        model=str(model_dir),
        sat_data=[str(sat_dir)],
        output_dir=str(work / 'grpo'),
        num_generations=args.generations,
        rollout_batch_prompts=prompts,
        mini_batch_prompts=prompts,
        rollout_steps=args.steps + 1,
        per_device_batch_size=prompts * args.generations,
        max_completion_length=args.completion_tokens,
        save_steps=10**6,
        finetuning=args.finetuning,
        dtype=args.dtype,
        attn_implementation=args.attn,
        gradient_checkpointing=args.gradient_checkpointing,
        trl={'generation_kwargs': {'min_new_tokens': args.completion_tokens}},
    )
    _reset_peak()
    trainer = build_trainer(settings)
    timer = _Timer()
    trainer.add_callback(timer.callback)
    trainer.train()
    step_s = float(np.mean(timer.times[1:])) if len(timer.times) > 1 else float(timer.times[0])
    completions = prompts * args.generations
    return {
        'step_s': round(step_s, 4),
        'completions_per_s': round(completions / step_s, 3),
        'generated_tokens_per_s': round(completions * args.completion_tokens / step_s, 1),
        'completions_per_step': completions,
        'completion_tokens': args.completion_tokens,
        'peak_gpu_gb': _peak_gb(),
    }


def bench_vllm(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from actial_ros.training.fine_tuning.modeling import load_processor
    from actial_ros.training.fine_tuning.prompts import structured_messages
    from PIL import Image
    from vllm import LLM, SamplingParams

    processor = load_processor(model_dir)
    llm = LLM(
        model=str(model_dir), limit_mm_per_prompt={'image': 2}, max_model_len=8192, gpu_memory_utilization=0.7, seed=0
    )
    width, height = args.image_width, args.image_height
    gen = np.random.default_rng(0)
    requests = []
    for _ in range(args.vllm_prompts):
        text = processor.apply_chat_template(
            structured_messages('Did the camera move left or right?', system_prompt='', num_images=2),
            add_generation_prompt=True,
            tokenize=False,
        )
        images = [Image.fromarray(gen.integers(0, 255, (height, width, 3), dtype=np.uint8)) for _ in range(2)]
        requests.append({'prompt': text, 'multi_modal_data': {'image': images}})
    params = SamplingParams(n=args.generations, temperature=1.0, max_tokens=args.completion_tokens, ignore_eos=True)
    llm.generate(requests[:1], params)  # warm-up
    start = time.perf_counter()
    outputs = llm.generate(requests, params)
    elapsed = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    return {
        'prompts': len(requests),
        'n': args.generations,
        'seconds': round(elapsed, 3),
        'generated_tokens_per_s': round(tokens / elapsed, 1),
        'completions_per_s': round(len(requests) * args.generations / elapsed, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=['tiny', '3b', '7b'], default='7b')
    parser.add_argument('--modes', nargs='+', choices=['sft', 'grpo', 'vllm'], default=['sft', 'grpo'])
    parser.add_argument('--steps', type=int, default=5, help='timed optimizer steps (after one warm-up step)')
    parser.add_argument('--batch', type=int, default=8, help='SFT samples / GRPO completions per step')
    parser.add_argument('--generations', type=int, default=8, help='GRPO group size; vLLM n')
    parser.add_argument('--completion-tokens', type=int, default=512)
    parser.add_argument('--vllm-prompts', type=int, default=64)
    parser.add_argument('--image-size', default='960x540', help='WIDTHxHEIGHT of the synthetic images')
    parser.add_argument('--finetuning', choices=['full', 'lora'], default='full')
    parser.add_argument('--dtype', default='auto')
    parser.add_argument('--attn', default=None, help='sdpa or flash_attention_2')
    parser.add_argument('--gradient-checkpointing', action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument('--work-dir', type=Path, help='where the random checkpoint and data go (default: temp)')
    parser.add_argument('--out', type=Path, help='write the figures as JSON here')
    args = parser.parse_args()
    args.image_width, args.image_height = (int(v) for v in args.image_size.lower().split('x'))

    import torch
    from actial_ros.training.fine_tuning.tiny_model import build_tiny_qwen25vl, save_random_qwen25vl

    work = args.work_dir or Path(tempfile.mkdtemp(prefix='actial_bench_'))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / f'qwen25vl_{args.size}_random'
    if not (model_dir / 'config.json').exists():
        if args.size == 'tiny':
            build_tiny_qwen25vl(model_dir)
        else:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
            save_random_qwen25vl(model_dir, args.size, dtype=torch.bfloat16, device=device)
    from actial_ros.training.dataset.schema import features
    from datasets import Dataset, Features, Image, List, Value

    rows = _rows(max(args.batch, 8), args.image_width, args.image_height)
    data_dir = work / 'viewpoint'
    data_dir.mkdir(exist_ok=True)
    Dataset.from_list(rows, features=features()).to_parquet(str(data_dir / 'train-00000.parquet'))
    sat_dir = work / 'sat'
    sat_dir.mkdir(exist_ok=True)
    sat_rows = [
        {
            'image_bytes': [r['image_1'], r['image_2']],
            'question': r['question'].split('\n')[1],
            'answers': ['left', 'right'],
            'question_type': 'ego_movement',
            'correct_answer': 'left',
        }
        for r in rows
    ]
    Dataset.from_list(
        sat_rows,
        features=Features(
            {
                'image_bytes': List(Image()),
                'question': Value('string'),
                'answers': List(Value('string')),
                'question_type': Value('string'),
                'correct_answer': Value('string'),
            }
        ),
    ).to_parquet(str(sat_dir / 'SAT_train.parquet'))

    machine = {
        'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        'cpu': platform.processor() or platform.machine(),
        'torch': torch.__version__,
        'python': platform.python_version(),
    }
    results: dict[str, Any] = {'size': args.size, 'image_size': args.image_size, 'machine': machine}
    for mode in args.modes:
        if mode == 'sft':
            results['sft'] = bench_sft(model_dir, data_dir, args, work)
        elif mode == 'grpo':
            results['grpo'] = bench_grpo(model_dir, sat_dir, args, work)
        else:
            try:
                results['vllm'] = bench_vllm(model_dir, args)
            except ImportError as exc:
                results['vllm'] = {'skipped': f'vllm not importable: {exc}'}
        print(json.dumps({mode: results[mode]}), flush=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + '\n', encoding='utf-8')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""``actial-ros-train export``: merge a LoRA adapter and write a directory ``vllm serve`` loads.

The output holds ``config.json``, ``generation_config.json``, ``model*.safetensors`` (the merged weights, in
``--dtype``), the tokenizer files, ``chat_template.jinja`` and ``preprocessor_config.json`` naming
``Qwen2VLImageProcessor``/``Qwen2_5_VLProcessor`` (:func:`actial_ros.training.fine_tuning.modeling.save_processor`), so
``vllm serve OUT --served-model-name actial-7b`` serves it and the robot's ``vllm`` backend can use it.
A full (non-LoRA) checkpoint is re-saved the same way (dtype conversion, processor files).

Example::

    actial-ros-train export --checkpoint runs/grpo --out exports/actial-7b --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from actial_ros.errors import ConfigError

__all__ = ['configure_parser', 'export_model', 'main', 'run']

_LOG = logging.getLogger(__name__)


def _has_tokenizer(path: Path) -> bool:
    return (path / 'tokenizer_config.json').is_file() and (path / 'preprocessor_config.json').is_file()


def export_model(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    base_model: str | None = None,
    processor: str | None = None,
    dtype: str = 'bfloat16',
) -> Path:
    """Merge (LoRA) or re-save (full) ``checkpoint`` into ``out_dir`` with its processor files.

    Args:
        checkpoint: a LoRA adapter directory (``adapter_config.json``) or a full checkpoint directory.
        out_dir: the export directory (created; existing files overwritten).
        base_model: base of the adapter (default: the adapter's ``base_model_name_or_path``).
        processor: where to take the processor from (default: ``checkpoint`` when it has one, else the base).
        dtype: dtype of the saved weights (``bfloat16``, ``float16``, ``float32``); merging is done in float32.

    Returns:
        ``out_dir`` as a path.

    Raises:
        ConfigError: the checkpoint is missing, or an adapter without a known base model.
    """
    from actial_ros.training.fine_tuning.modeling import load_model, load_processor, resolve_dtype, save_processor

    source = Path(checkpoint)
    if not source.is_dir():
        raise ConfigError(f'no checkpoint directory {source}')
    adapter_config = source / 'adapter_config.json'
    target_dtype = resolve_dtype(dtype)
    if adapter_config.is_file():
        from peft import PeftModel

        base = base_model or json.loads(adapter_config.read_text(encoding='utf-8')).get('base_model_name_or_path')
        if not base:
            raise ConfigError(f'{adapter_config} names no base model; pass --base-model')
        model: Any = load_model(base, dtype='float32')
        model = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
        processor_source = processor or (str(source) if _has_tokenizer(source) else str(base))
    else:
        model = load_model(str(source), dtype='float32')
        processor_source = processor or str(source)
    model = model.to(target_dtype)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    save_processor(load_processor(processor_source), out)
    _LOG.info('exported %s to %s (%s)', source, out, target_dtype)
    return out


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros-train export``."""
    parser.add_argument('--checkpoint', required=True, help='LoRA adapter or full checkpoint directory')
    parser.add_argument('--out', required=True, help='export directory for vllm serve')
    parser.add_argument('--base-model', help="adapter's base (default: from adapter_config.json)")
    parser.add_argument('--processor', help='processor source (default: checkpoint, else base)')
    parser.add_argument('--dtype', default='bfloat16', help='bfloat16 (default), float16 or float32')


def run(args: argparse.Namespace) -> int:
    """Entry point of ``actial-ros-train export``; returns the exit status (2 on a bad checkpoint)."""
    from tqdm.auto import tqdm

    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    with tqdm(total=1, desc='export', unit='model') as bar:
        try:
            out = export_model(
                args.checkpoint, args.out, base_model=args.base_model, processor=args.processor, dtype=args.dtype
            )
        except ConfigError as exc:
            _LOG.error('%s', exc)
            return 2
        bar.update(1)
    print(f'exported to {out}; serve with: vllm serve {out} --served-model-name actial')
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m actial_ros.training.fine_tuning.export``."""
    from actial_ros.training.fine_tuning.runtime import module_main

    return int(module_main(configure_parser, run, 'actial_ros.training.fine_tuning.export', argv))


if __name__ == '__main__':
    raise SystemExit(main())

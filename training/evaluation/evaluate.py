"""``actial-ros-train evaluate``: accuracy per category on the viewpoint test split and spatial benchmarks.

A model answers every item either in-process with transformers (``--model DIR``; greedy decoding, i.e.
temperature 0) or through an OpenAI-compatible endpoint such as ``vllm serve`` (``--base-url URL
--served-model NAME``; temperature 0, through :class:`actial_ros.backends.vllm.VllmBackend`). As in the
paper's evaluation (../shared/notes/ACTIAL.md) the answer is read from the first ``<answer>`` block
(:func:`actial_ros.answers.parse_answer`, which also accepts a bare letter when there are no tags); an
answer that names no valid option letter is "unparsed" and counts as wrong. The format-compliance rate is
the share of replies that pass :func:`actial_ros.answers.matches_output_format` (the GRPO format reward).

Aggregates: ``overall`` = all items of a benchmark (micro average); CV-Bench ``avg`` = the dataset card's
score, the mean of the 2D accuracy (mean of its ADE20K and COCO accuracies) and the 3D accuracy (Omni3D),
falling back to the mean of the 2D and 3D accuracies without ``source``; BLINK ``avg`` = the mean over the
evaluated subtasks. Printed as a table next to :data:`~actial_ros.training.evaluation.benchmarks.PAPER_RESULTS`; saved
as ``results.json`` (summary) and ``predictions.jsonl`` (one record per item) in ``--out``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from actial_ros.training import config as settings_io
from actial_ros.training.config import setting
from actial_ros.training.evaluation.benchmarks import (
    BLINK_SPATIAL_SUBTASKS,
    PAPER_MODELS,
    PAPER_RESULTS,
    EvalItem,
    load_blink,
    load_cv_bench,
    load_viewpoint_items,
    load_vlmeval_tsv,
)
from actial_ros.training.fine_tuning.runtime import Shard

from actial_ros.answers import parse_answer
from actial_ros.errors import BackendError, ConfigError
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT
from actial_ros.recipe import resolve_system_prompt

__all__ = [
    'CategoryScore',
    'EndpointGenerator',
    'EvaluateSettings',
    'Prediction',
    'TransformersGenerator',
    'configure_parser',
    'evaluate',
    'main',
    'render_table',
    'run',
    'score',
    'summarize',
]

_LOG = logging.getLogger(__name__)

Generator = Callable[[Sequence[EvalItem]], list[str]]
"""Answers a batch of items: one raw reply text per item ('' when the request failed)."""


@dataclass(frozen=True)
class Prediction:
    """One scored reply.

    Attributes:
        benchmark, category, item_id, answer: from the item.
        raw_text: the model's reply.
        letter: the option letter read from it, or ``None`` (unparsed).
        correct: ``letter == answer``.
        well_formatted: the reply is one think block then one answer block.
        error: why no reply was obtained (endpoint failures), else ``None``.
    """

    benchmark: str
    category: str
    item_id: str
    answer: str
    raw_text: str
    letter: str | None
    correct: bool
    well_formatted: bool
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryScore:
    """Accuracy of one category (or aggregate) of a benchmark; rates in [0, 1].

    ``total`` counts items, ``correct`` right answers, ``unparsed`` replies without a valid letter,
    ``formatted`` replies in the output format, ``errors`` failed requests. Aggregates computed from other
    scores (CV-Bench and BLINK ``avg``) have ``total`` 0 and only ``accuracy``.
    """

    total: int
    correct: int
    unparsed: int
    formatted: int
    errors: int
    accuracy: float

    @property
    def format_rate(self) -> float:
        """Share of replies in the output format (0 for computed aggregates)."""
        return self.formatted / self.total if self.total else 0.0


def score(
    items: Sequence[EvalItem], replies: Sequence[str], errors: Sequence[str | None] | None = None
) -> list[Prediction]:
    """Score replies against their items (``parse_answer`` with each item's valid letters).

    Raises:
        ValueError: different numbers of items and replies.
    """
    if len(items) != len(replies):
        raise ValueError(f'{len(items)} items but {len(replies)} replies')
    errs = list(errors) if errors is not None else [None] * len(items)
    predictions = []
    for item, text, error in zip(items, replies, errs, strict=True):
        parsed = parse_answer(text, letters=item.letters)
        predictions.append(
            Prediction(
                benchmark=item.benchmark,
                category=item.category,
                item_id=item.item_id,
                answer=item.answer,
                raw_text=text,
                letter=parsed.letter,
                correct=parsed.letter is not None and parsed.letter == item.answer,
                well_formatted=parsed.well_formatted,
                error=error,
                extra=dict(item.extra),
            )
        )
    return predictions


def _tally(predictions: Iterable[Prediction]) -> CategoryScore:
    preds = list(predictions)
    total = len(preds)
    correct = sum(p.correct for p in preds)
    return CategoryScore(
        total=total,
        correct=correct,
        unparsed=sum(p.letter is None for p in preds),
        formatted=sum(p.well_formatted for p in preds),
        errors=sum(p.error is not None for p in preds),
        accuracy=correct / total if total else 0.0,
    )


def _aggregate(accuracy: float) -> CategoryScore:
    return CategoryScore(total=0, correct=0, unparsed=0, formatted=0, errors=0, accuracy=accuracy)


def summarize(predictions: Sequence[Prediction]) -> dict[str, dict[str, CategoryScore]]:
    """Per benchmark: each category, ``overall`` and the benchmark's published aggregate (``avg``).

    Returns:
        ``{benchmark: {category | 'overall' | 'avg': CategoryScore}}``.
    """
    by_benchmark: dict[str, list[Prediction]] = defaultdict(list)
    for p in predictions:
        by_benchmark[p.benchmark].append(p)
    summary: dict[str, dict[str, CategoryScore]] = {}
    for benchmark, preds in by_benchmark.items():
        categories: dict[str, list[Prediction]] = defaultdict(list)
        for p in preds:
            categories[p.category].append(p)
        table = {name: _tally(group) for name, group in sorted(categories.items())}
        table['overall'] = _tally(preds)
        if benchmark == 'cv_bench':
            table['avg'] = _aggregate(_cv_bench_average(preds))
        elif benchmark == 'blink':
            subtasks = [s for name, s in table.items() if name != 'overall']
            table['avg'] = _aggregate(sum(s.accuracy for s in subtasks) / len(subtasks))
        summary[benchmark] = table
    return summary


def _cv_bench_average(preds: Sequence[Prediction]) -> float:
    """CV-Bench's card score: mean(mean(acc ADE20K, acc COCO), acc Omni3D); else mean(acc 2D, acc 3D)."""

    def acc(selected: list[Prediction]) -> float | None:
        return sum(p.correct for p in selected) / len(selected) if selected else None

    by_source = {src: acc([p for p in preds if p.extra.get('source') == src]) for src in ('ADE20K', 'COCO', 'Omni3D')}
    two_d_parts = [v for k, v in by_source.items() if k != 'Omni3D' and v is not None]
    if two_d_parts and by_source['Omni3D'] is not None:
        return (sum(two_d_parts) / len(two_d_parts) + by_source['Omni3D']) / 2
    parts = [acc([p for p in preds if p.extra.get('type') == kind]) for kind in ('2D', '3D')]
    present = [v for v in parts if v is not None]
    if present:
        return sum(present) / len(present)
    return sum(p.correct for p in preds) / len(preds)


def render_table(summary: dict[str, dict[str, CategoryScore]], label: str = 'this model') -> Any:
    """A ``rich.table.Table``: accuracy (%) per category, format compliance, unparsed, and the paper's numbers."""
    from rich.table import Table

    table = Table(title=f'actial_ros evaluation: {label} (accuracy %, paper numbers beside)')
    table.add_column('benchmark')
    table.add_column('category')
    table.add_column('n', justify='right')
    table.add_column(label, justify='right', style='bold')
    table.add_column('format %', justify='right')
    table.add_column('unparsed', justify='right')
    models = [m for m in PAPER_MODELS if any(m in row for row in PAPER_RESULTS.values())]
    for model in models:
        table.add_column(model, justify='right', style='dim')
    for benchmark, categories in summary.items():
        for category, s in categories.items():
            paper = PAPER_RESULTS.get(f'{benchmark}/{category}', {})
            aggregate = s.total == 0
            table.add_row(
                benchmark,
                category,
                '' if aggregate else str(s.total),
                f'{100 * s.accuracy:.1f}',
                '' if aggregate else f'{100 * s.format_rate:.1f}',
                '' if aggregate else str(s.unparsed),
                *[f'{paper[m]:.1f}' if m in paper else '' for m in models],
            )
    return table


# ----------------------------------------------------------------------------------------------------
# Generators
# ----------------------------------------------------------------------------------------------------


class TransformersGenerator:
    """Greedy generation in-process with transformers (temperature 0), batched with left padding, by the
    transformers backend's generation (:func:`~actial_ros.backends.transformers_backend.chat_batch`,
    :func:`~actial_ros.backends.transformers_backend.generate_greedy`).

    Args:
        model_path: checkpoint directory or hub id.
        system_prompt: system message ('' for none).
        max_new_tokens: generation limit per reply.
        batch_size: items per ``generate`` call.
        dtype: see :func:`actial_ros.training.fine_tuning.modeling.resolve_dtype`.
        max_pixels: image processor ``max_pixels`` override.
        device: ``'cpu'``, ``'cuda'``... (default: CUDA when available).
    """

    def __init__(
        self,
        model_path: str,
        *,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_new_tokens: int = 1024,
        batch_size: int = 4,
        dtype: str = 'auto',
        max_pixels: int | None = None,
        device: str | None = None,
    ) -> None:
        import torch
        from actial_ros.training.fine_tuning.modeling import load_model, load_processor

        self.processor = load_processor(model_path, max_pixels=max_pixels, padding_side='left')
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        model: Any = load_model(model_path, dtype=dtype)
        self.model = model.to(self.device).eval()
        self.system_prompt = system_prompt
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))

    def __call__(self, items: Sequence[EvalItem]) -> list[str]:
        """Replies to ``items`` (batched internally)."""
        replies: list[str] = []
        for start in range(0, len(items), self.batch_size):
            replies.extend(self._batch(items[start : start + self.batch_size]))
        return replies

    def _batch(self, items: Sequence[EvalItem]) -> list[str]:
        from actial_ros.training.fine_tuning.data import fit_image_bytes
        from PIL import Image

        from actial_ros.backends.transformers_backend import chat_batch, generate_greedy

        # Downscaled to fit 960x540 as in training (actial_ros.training.fine_tuning.data.fit_image_bytes), so that a
        # large max_pixels sees the same pixels at evaluation as in SFT and GRPO.
        images = [
            [Image.open(io.BytesIO(fit_image_bytes(data))).convert('RGB') for data in item.images] for item in items
        ]
        inputs = chat_batch(self.processor, [item.question for item in items], images, system_prompt=self.system_prompt)
        replies = generate_greedy(self.model, self.processor, inputs, max_new_tokens=self.max_new_tokens)
        return [text for text, _, _ in replies]


class EndpointGenerator:
    """Replies from an OpenAI-compatible server (``vllm serve``) through :class:`~actial_ros.backends.vllm.VllmBackend`.

    Temperature 0; ``concurrency`` requests in flight. A request that fails after the backend's retries
    gives an empty reply and its error is kept (:attr:`errors`), so one bad item does not stop a run.
    """

    def __init__(
        self,
        base_url: str,
        served_model: str,
        *,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_new_tokens: int = 1024,
        concurrency: int = 8,
        top_p: float = 1.0,
        timeout_s: float = 300.0,
        api_key_env: str = 'ACTIAL_API_KEY',
    ) -> None:
        from actial_ros.backends.vllm import VllmBackend, VllmOptions

        self.backend = VllmBackend(
            options=VllmOptions(
                base_url=base_url,
                model=served_model,
                api_key_env=api_key_env,
                timeout_s=timeout_s,
                max_in_flight=concurrency,
                system_prompt=system_prompt,
                max_tokens=max_new_tokens,
                temperature=0.0,
                top_p=top_p,
            )
        )
        self.concurrency = max(1, int(concurrency))
        self.errors: dict[str, str] = {}

    def _one(self, item: EvalItem) -> str:
        from actial_ros.frame import Frame
        from actial_ros.imaging import decode_jpeg

        frames = [
            Frame(image=decode_jpeg(data), stamp_ns=0, name=f'{item.item_id}:{k}') for k, data in enumerate(item.images)
        ]
        try:
            return self.backend.ask(frames, item.question).raw_text
        except BackendError as exc:
            self.errors[f'{item.benchmark}/{item.item_id}'] = str(exc)
            return ''

    def __call__(self, items: Sequence[EvalItem]) -> list[str]:
        """Replies to ``items`` in order."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, items))

    def close(self) -> None:
        """Close the HTTP client."""
        self.backend.close()


def evaluate(
    items: Sequence[EvalItem], generate: Generator, *, chunk: int = 32, progress: bool = True
) -> list[Prediction]:
    """Ask every item (in chunks, with a progress bar) and score the replies."""
    from tqdm.auto import tqdm

    replies: list[str] = []
    with tqdm(total=len(items), desc='evaluate', unit='item', disable=not progress) as bar:
        for start in range(0, len(items), chunk):
            batch = items[start : start + chunk]
            replies.extend(generate(batch))
            bar.update(len(batch))
    errors_by_key = getattr(generate, 'errors', {})
    errors = [errors_by_key.get(f'{i.benchmark}/{i.item_id}') for i in items]
    return score(items, replies, errors)


# ----------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------


def _tsv_pair(text: str) -> tuple[str, str]:
    if '=' not in text:
        raise ConfigError(f'--tsv expects NAME=PATH, got {text!r}')
    name, path = text.split('=', 1)
    return name.strip(), path.strip()


_MODEL = 'model (one of)'
_DATA = 'benchmarks (any of; local files)'
_GEN = 'generation'
_OUT = 'output'


@dataclass
class EvaluateSettings:
    """Settings of ``actial-ros-train evaluate`` (YAML keys = field names; flags ``--field-name``)."""

    model: str | None = field(
        default=None, metadata=setting('checkpoint directory or hub id, run in-process with transformers', group=_MODEL)
    )
    base_url: str | None = field(
        default=None,
        metadata=setting('OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vllm serve)', group=_MODEL),
    )
    served_model: str | None = field(
        default=None, metadata=setting('model name the endpoint serves (--served-model-name)', group=_MODEL)
    )
    api_key_env: str = field(
        default='ACTIAL_API_KEY', metadata=setting('environment variable holding the API key', group=_MODEL)
    )
    viewpoint: list[str] | None = field(
        default=None, metadata=setting('viewpoint dataset parquet files/dirs', group=_DATA)
    )
    viewpoint_split: str = field(
        default='test', metadata=setting("split of the viewpoint rows ('' for all)", group=_DATA)
    )
    cv_bench: list[str] | None = field(default=None, metadata=setting('CV-Bench parquet file(s)', group=_DATA))
    blink: str | None = field(
        default=None, metadata=setting('BLINK root folder (one subfolder per subtask)', group=_DATA)
    )
    blink_subtasks: list[str] = field(
        default_factory=lambda: list(BLINK_SPATIAL_SUBTASKS), metadata=setting('BLINK subtasks', group=_DATA)
    )
    blink_split: str = field(default='val', metadata=setting('BLINK split (test answers are not public)', group=_DATA))
    threedsrbench: str | None = field(
        default=None, metadata=setting('3DSRBench VLMEvalKit TSV', group=_DATA, flag='--3dsrbench')
    )
    tsv: list[str] = field(default_factory=list, metadata=setting('other MCQ TSVs', group=_DATA, metavar='NAME=PATH'))
    limit: int | None = field(
        default=None, metadata=setting('at most N items per benchmark (per BLINK subtask)', group=_DATA)
    )
    system_prompt: str | None = field(
        default=None,
        metadata=setting(
            "system prompt ('' for none; default: the one --model was trained with (its actial_recipe.json), "
            'else the Actial prompt)',
            group=_GEN,
        ),
    )
    max_new_tokens: int = field(default=1024, metadata=setting('generation limit per reply', group=_GEN))
    batch_size: int = field(default=4, metadata=setting('in-process: items per generate call', group=_GEN))
    concurrency: int = field(default=8, metadata=setting('endpoint: requests in flight', group=_GEN))
    top_p: float = field(default=1.0, metadata=setting('endpoint: top_p (no effect at temperature 0)', group=_GEN))
    timeout: float = field(default=300.0, metadata=setting('endpoint: seconds per request', group=_GEN))
    dtype: str = field(default='auto', metadata=setting('in-process: auto, bfloat16, float16, float32', group=_GEN))
    max_pixels: int | None = field(
        default=None, metadata=setting("in-process: image processor's max_pixels", group=_GEN)
    )
    out: str = field(default='runs/eval', metadata=setting('folder for results.json, predictions.jsonl', group=_OUT))
    label: str | None = field(
        default=None,
        metadata=setting('name of the model in the table (default: --model or --served-model)', group=_OUT),
    )
    progress: bool = field(default=True, metadata=setting('progress bar', group=_OUT))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of ``actial-ros-train evaluate``: one per :class:`EvaluateSettings` field, plus ``--config``."""
    settings_io.add_arguments(parser, EvaluateSettings)


def _items(args: EvaluateSettings) -> list[EvalItem]:
    items: list[EvalItem] = []
    if args.viewpoint:
        items += load_viewpoint_items(args.viewpoint, split=args.viewpoint_split or None, limit=args.limit)
    if args.cv_bench:
        items += load_cv_bench(args.cv_bench, limit=args.limit)
    if args.blink:
        items += load_blink(args.blink, subtasks=args.blink_subtasks, split=args.blink_split, limit=args.limit)
    if args.threedsrbench:
        items += load_vlmeval_tsv(args.threedsrbench, benchmark='3dsrbench', limit=args.limit)
    for text in args.tsv:
        name, path = _tsv_pair(text)
        items += load_vlmeval_tsv(path, benchmark=name, limit=args.limit)
    return items


def run(namespace: argparse.Namespace) -> int:
    """Entry point of ``actial-ros-train evaluate``; returns the exit status (2 on bad arguments)."""
    from rich.console import Console

    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        args: EvaluateSettings = settings_io.resolve(EvaluateSettings, namespace)
    except ConfigError as exc:
        _LOG.error('%s', exc)
        return 2
    if bool(args.model) == bool(args.base_url):
        _LOG.error('give either --model (in-process) or --base-url with --served-model (endpoint)')
        return 2
    if args.base_url and not args.served_model:
        _LOG.error('--base-url needs --served-model')
        return 2
    try:
        items = _items(args)
    except ConfigError as exc:
        _LOG.error('%s', exc)
        return 2
    if not items:
        _LOG.error('no benchmark given: use --viewpoint, --cv-bench, --blink, --3dsrbench or --tsv')
        return 2
    started = time.perf_counter()
    shard = Shard.of_launch()  # one of several processes under accelerate launch / torchrun, else the whole
    generate: Any
    try:  # the checkpoint's own recipe unless a flag says otherwise
        system_prompt = resolve_system_prompt(args.system_prompt, args.model)
    except ConfigError as exc:
        _LOG.error('%s', exc)
        return 2
    if args.model:
        generate = TransformersGenerator(
            args.model,
            system_prompt=system_prompt,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            dtype=args.dtype,
            max_pixels=args.max_pixels,
            device=shard.device,
        )
        label = args.label or str(args.model)
    else:
        generate = EndpointGenerator(
            str(args.base_url),
            str(args.served_model),  # both given: checked above
            system_prompt=system_prompt,
            max_new_tokens=args.max_new_tokens,
            concurrency=args.concurrency,
            top_p=args.top_p,
            timeout_s=args.timeout,
            api_key_env=args.api_key_env,
        )
        label = args.label or str(args.served_model)
    try:
        mine = shard.indices(len(items))
        answered = evaluate([items[i] for i in mine], generate, progress=args.progress and shard.is_main)
    finally:
        if isinstance(generate, EndpointGenerator):
            generate.close()
    records = shard.gather(mine, [asdict(p) for p in answered])
    shard.close()  # every process past the gather; a failed one raises instead of waiting for the others
    if records is None:  # another process writes the results
        return 0
    predictions = [Prediction(**record) for record in records]
    summary = summarize(predictions)
    console = Console() if sys.stdout.isatty() else Console(width=200)  # full table in logs and pipes
    console.print(render_table(summary, label))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        'label': label,
        'system_prompt': system_prompt,
        'max_new_tokens': args.max_new_tokens,
        'elapsed_s': round(time.perf_counter() - started, 3),
        'processes': shard.processes,
        'summary': {
            b: {c: {**asdict(s), 'format_rate': s.format_rate} for c, s in cats.items()} for b, cats in summary.items()
        },
        'paper': PAPER_RESULTS,
    }
    (out / 'results.json').write_text(json.dumps(results, indent=2) + '\n', encoding='utf-8')
    with open(out / 'predictions.jsonl', 'w', encoding='utf-8') as handle:
        for p in predictions:
            handle.write(json.dumps(asdict(p)) + '\n')
    print(f'wrote {out / "results.json"} and {out / "predictions.jsonl"} ({len(predictions)} items)')
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m actial_ros.training.evaluation.evaluate``."""
    from actial_ros.training.fine_tuning.runtime import module_main

    return int(module_main(configure_parser, run, 'actial_ros.training.evaluation.evaluate', argv))


if __name__ == '__main__':
    raise SystemExit(main())

"""Learning probe: where, between the pixels and the answer, does the turn direction stop being decodable?

Reads the output folder of ``benchmarks/learning.py`` (``data/train`` and ``data/heldout``, the viewpoint rows;
``base``, the random model; ``sft``, the trained one) and, for each model, runs it once over the rows with the
recipe's prompt (chat template, no system prompt, 56 px images: 4x4 patches, 4 tokens per image) followed by the
SFT target's prefix ``<think>\\n</think>\\n<answer>``. Probes read, per question:

- the pixels the model sees (56 px, normalised): the sign of the best horizontal shift between the two images
  (a rule: cross-correlation over -40..40 px, its sign mapped to a label on the training rows); the mean colour of
  each of the 4 token quadrants of both images (24 numbers), linear and a one-hidden-layer MLP, with image 1 alone,
  image 2 alone and the images swapped (the MLP fitted in order, scored against the unswapped label) as controls;
- the vision tower's outputs: the cosines between image 1's and image 2's 16 patches before the 2x2 merge (16x16)
  and between their 4 merged tokens, what the language model receives (4x4);
- the language model's hidden state at the answer position (the prompt's last token, where the reply begins),
  layers 1 to 4 (the last after the final norm);
- its hidden states at image 2's 4 tokens, side by side (4x256, layers 1 to 4): the only places where causal
  attention can compare image 2 with image 1 before the answer; image 1's 4 tokens (which cannot see image 2) are
  the control;
- the model's own label word: its argmax over the first tokens of left / right / none after ``<think>\\n``, where
  the SFT target (``config/training/sft_from_scratch.yaml``) writes the direction (no fit).

Linear probes are L2 logistic regressions (L-BFGS), the MLP 256 hidden units (AdamW); all fitted on TRAINING rows
(features standardised on them), the L2 weight or the MLP's weight decay and epochs picked on a validation split
of the training rows (20 % of their scenes, ``object_id``), then refitted on all training rows and reported on the
HELD-OUT rows (other objects in scenes never seen), next to the held-out majority rate. Rotation only by default;
``--cap-translation N`` adds the two translation types (left / right / none) with at most N training rows each.

    .venv/bin/python benchmarks/learning.py --out out/learning_s3 --seed 3 --stages render build model sft   # its input
    .venv/bin/python benchmarks/learning_probe.py out/learning_s3                 # base and sft, rotation
    .venv/bin/python benchmarks/learning_probe.py out/learning_s3 --cap-translation 3000 --json probe_all.json

It prints one table per question type (feature, held-out %, train %, rows) with the majority rate, and writes
every figure with the validation accuracy and the chosen hyperparameters to ``OUT_DIR/probe.json`` (``--json``).

Measured on seed 3's output (2026-12-07; the project's CPU machine: AMD EPYC, 2 cores, Python 3.11.7, torch
2.13.0+cpu, 1 thread, another benchmark on the second core): 6,328 training and 492 held-out rotation rows,
majority rate 51.6 %; 224 s at the defaults (rotation, base and sft; 289 s at 2 threads with the image-token
probes, added later the same day). Every held-out figure equals, to the tenth of
a point, that of the experiment script (outside the tree) this replaces, which docs/training.md quotes.

Why: the from-scratch recipe stays at chance on held-out scenes (docs/training.md). The direction of a turn is a
relation between the two images, and this says where it is lost: it is in the pixels (84.8 % held out from the 24
quadrant colours, compared by an MLP; 52.4 / 50.2 % from either image alone, 15.0 % with the images swapped: the
cue is relational), in the random vision tower's patches (79.3 %), weaker after the 2x2 merge (61.8 %), and at
chance at the language model's answer position before and after SFT (48.6-53.9 / 47.8-53.0 %), where the SFT
model writes "left" for every pair (48.4 %). Image 2's tokens in the language model are at chance too (50.0-53.3 %
held out, layers 1-4, before and after SFT, while they fit 57-66 % of the training rows): attention from image 2 to
image 1 does not compute the comparison either, at initialisation or after training. The comparison of the two
images is what is not learned, so the recipe's next step is a first-order gradient for it, and features that
survive the merge (``benchmarks/learning_grounding.py`` separates routing from comparing).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch

Array = NDArray[Any]
Predictor = Callable[['torch.Tensor'], 'torch.Tensor']

QUESTION_TYPES = ('rotation', 'ego_translation', 'object_translation')
TRANSLATION_TYPES = QUESTION_TYPES[1:]
SUFFIX = '<think>\n</think>\n<answer>'  # the SFT target's prefix before the letter (prompts.DEFAULT_MC_TARGET)
WORD_PREFIX = '<think>\n'  # where the recipe's target (sft_from_scratch.yaml) writes the direction word
LABEL_WORDS = ('left', 'right', 'none')
MAX_PIXELS = 3136  # the recipe's image size: 56x56, 4x4 patches of 14 px, merged 2x2 into 4 tokens per image
GRID = (1, 4, 4)
BATCH = 16
SHIFTS = np.arange(-40, 41)  # px at 56 px: at least 16 px of overlap
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
MLP_WEIGHT_DECAYS = (1e-2, 1.0)
MLP_EPOCHS = 40
MLP_HIDDEN = 256
SEED = 0


@dataclass
class Rows:
    """Viewpoint rows of one split (in file order within each question type) and their two JPEG images."""

    meta: list[dict[str, Any]]
    images: list[tuple[bytes, bytes]]

    def types(self) -> Array:
        return np.array([r['question_type'] for r in self.meta])


@dataclass
class Probe:
    """One figure: held-out and training accuracy of a probe (``val_acc`` and ``hyperparameters`` when fitted)."""

    feature: str
    kind: str  # 'linear', 'mlp', 'rule' (fitted sign) or 'none' (the model's own output)
    heldout_acc: float
    train_acc: float | None
    n_train: int
    n_heldout: int
    val_acc: float | None = None
    hyperparameters: Any = None


@dataclass
class TypeResult:
    question_type: str
    labels: list[str]
    n_train: int
    n_heldout: int
    majority: float
    probes: list[Probe] = field(default_factory=list)


def parquet_files(split_dir: Path) -> list[Path]:
    files = sorted((split_dir / 'data').glob('*.parquet'))
    if not files:
        raise SystemExit(f'no parquet files in {split_dir / "data"}: not a benchmarks/learning.py output folder?')
    return files


def load_rows(split_dir: Path, caps: Mapping[str, int | None], seed: int = SEED) -> Rows:
    """The rows of the question types in ``caps``: at most ``caps[type]`` of each (None: all), drawn at random
    (``seed``) and kept in file order, grouped by type in :data:`QUESTION_TYPES` order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = parquet_files(split_dir)
    columns = ['id', 'object_id', 'question_type', 'question', 'answer_label']
    meta = pa.concat_tables([pq.read_table(f, columns=columns) for f in files]).to_pylist()
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for question_type in QUESTION_TYPES:
        if question_type not in caps:
            continue
        cap = caps[question_type]
        indices = [i for i, r in enumerate(meta) if r['question_type'] == question_type]
        if cap is not None and len(indices) > cap:
            indices = sorted(rng.choice(indices, cap, replace=False).tolist())
        keep.extend(indices)
    table = pa.concat_tables([pq.read_table(f, columns=['image_1', 'image_2']) for f in files]).take(pa.array(keep))
    first, second = table.column('image_1').to_pylist(), table.column('image_2').to_pylist()
    return Rows([meta[i] for i in keep], [(a['bytes'], b['bytes']) for a, b in zip(first, second, strict=True)])


def unpatchify(pixel_values: torch.Tensor) -> torch.Tensor:
    """One image's ``pixel_values`` (16 patches of 3x2x14x14, grid 1x4x4) -> (3, 56, 56), normalised as the model
    sees it (the first of the two identical temporal frames)."""
    x = pixel_values.reshape(2, 2, 2, 2, 3, 2, 14, 14)[:, :, :, :, :, 0]
    return x.permute(4, 0, 2, 5, 1, 3, 6).reshape(3, 56, 56)


def cross_correlation(a: torch.Tensor, b: torch.Tensor, shifts: Array = SHIFTS) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, len(shifts)): Pearson correlation of ``a[..., x]`` and ``b[..., x + s]`` over their
    overlap, averaged over channels."""
    import torch

    width = a.shape[-1]
    out = []
    for shift in shifts.tolist():
        lo, hi = max(0, -shift), min(width, width - shift)
        pa = a[..., lo:hi].flatten(2)
        pb = b[..., lo + shift : hi + shift].flatten(2)
        pa = pa - pa.mean(-1, keepdim=True)
        pb = pb - pb.mean(-1, keepdim=True)
        c = (pa * pb).sum(-1) / ((pa.square().sum(-1) * pb.square().sum(-1)).sqrt() + 1e-8)
        out.append(c.mean(1))
    return torch.stack(out, 1)


def pair_cosines(first: Array, second: Array) -> Array:
    """All cosines between image 1's and image 2's tokens: (N, n, D) x2 -> (N, n*n) float32; the bilinear
    comparison one attention head's q.k could compute."""
    a, b = first.astype(np.float32), second.astype(np.float32)
    a = a / (np.linalg.norm(a, axis=-1, keepdims=True) + 1e-6)
    b = b / (np.linalg.norm(b, axis=-1, keepdims=True) + 1e-6)
    cosines: Array = np.einsum('nid,njd->nij', a, b).reshape(len(a), -1)
    return cosines


def extract(model_dir: Path, rows: Rows, *, pixels: bool, log: Callable[[str], None]) -> dict[str, Array]:
    """Features of every row from one forward pass of the model in ``model_dir`` (float32, batches of
    :data:`BATCH`, left padding). Model features are rounded to float16, as the recorded figures had them."""
    import torch
    from actial_ros.training.fine_tuning.modeling import load_model, load_processor
    from actial_ros.training.fine_tuning.prompts import structured_messages
    from PIL import Image

    start = time.perf_counter()
    processor: Any = load_processor(model_dir, max_pixels=MAX_PIXELS, padding_side='left')
    model: Any = load_model(model_dir, dtype='float32')
    model.eval()
    tokenizer = processor.tokenizer
    suffix_ids = tokenizer(SUFFIX, add_special_tokens=False)['input_ids']
    prefix_ids = tokenizer(WORD_PREFIX, add_special_tokens=False)['input_ids']
    if suffix_ids[: len(prefix_ids)] != prefix_ids:
        raise SystemExit(f'{WORD_PREFIX!r} does not tokenise as the start of {SUFFIX!r}')
    prompt_end = -(len(suffix_ids) + 1)  # the prompt's last token: the answer position
    word_position = len(prefix_ids) - len(suffix_ids) - 1  # its logits give the word after '<think>\n'
    word_ids = [tokenizer(w, add_special_tokens=False)['input_ids'][0] for w in LABEL_WORDS]
    captured: dict[str, torch.Tensor] = {}

    def keep_vision_outputs(module: Any, inputs: Any, output: Any) -> None:
        captured['patches'] = output.last_hidden_state  # before the 2x2 merge: 16 patches per image
        captured['tokens'] = output.pooler_output  # after it: 4 tokens per image

    handle = model.model.visual.register_forward_hook(keep_vision_outputs)
    features: dict[str, list[Array]] = {}

    def add(name: str, value: Array) -> None:
        features.setdefault(name, []).append(value)

    def half(t: torch.Tensor) -> Array:
        array: Array = t.detach().half().numpy()
        return array

    for offset in range(0, len(rows.meta), BATCH):
        metas, pairs = rows.meta[offset : offset + BATCH], rows.images[offset : offset + BATCH]
        n = len(metas)
        texts = [
            processor.apply_chat_template(
                structured_messages(r['question'], system_prompt='', num_images=2),
                add_generation_prompt=True,
                tokenize=False,
            )
            + SUFFIX
            for r in metas
        ]
        images = [[Image.open(io.BytesIO(b)).convert('RGB') for b in pair] for pair in pairs]
        inputs = processor(text=texts, images=images, padding=True, return_tensors='pt')
        if not bool((inputs['image_grid_thw'] == torch.tensor(GRID)).all()):
            raise SystemExit(f'expected an image grid of {GRID} at max_pixels {MAX_PIXELS}')
        if inputs['input_ids'][:, -len(suffix_ids) :].tolist() != [suffix_ids] * n:
            raise SystemExit(f'the prompts do not end with the tokens of {SUFFIX!r}')
        with torch.inference_mode():
            output = model(**inputs, output_hidden_states=True)
        patches = half(captured['patches']).reshape(n, 2, 16, -1)
        tokens = half(captured['tokens']).reshape(n, 2, 4, -1)
        add('patch_cosines', pair_cosines(patches[:, 0], patches[:, 1]))
        add('token_cosines', pair_cosines(tokens[:, 0], tokens[:, 1]))
        hidden = output.hidden_states  # 0: embeddings; 1..L: the layers (the last after the final norm)
        add('lm', np.stack([half(hidden[layer][:, prompt_end]) for layer in range(1, len(hidden))], 1))
        image_positions = (inputs['input_ids'] == model.config.image_token_id).nonzero()[:, 1].reshape(n, 8)
        rows_index = torch.arange(n)[:, None]
        for name, part in (('lm_image1', image_positions[:, :4]), ('lm_image2', image_positions[:, 4:])):
            add(name, np.stack([half(hidden[layer][rows_index, part]) for layer in range(1, len(hidden))], 1))
        add('words', output.logits[:, word_position, word_ids].float().numpy())
        if pixels:
            pixel_values = inputs['pixel_values'].reshape(n, 2, 16, -1)
            x1 = torch.stack([unpatchify(pixel_values[i, 0]) for i in range(n)])
            x2 = torch.stack([unpatchify(pixel_values[i, 1]) for i in range(n)])
            add('best_shift', SHIFTS[cross_correlation(x1, x2).argmax(1).numpy()])
            # the mean colour of each token's 28x28 quadrant: (n, image, rgb, row, column)
            quadrants = [x.reshape(n, 3, 2, 28, 2, 28).mean((3, 5)) for x in (x1, x2)]
            add('colours', torch.stack(quadrants, 1).numpy())
        if (offset // BATCH) % 100 == 0:
            log(f'  {model_dir.name}: {offset + n}/{len(rows.meta)} rows, {time.perf_counter() - start:.0f} s')
    handle.remove()
    log(f'  {model_dir.name}: {len(rows.meta)} rows in {time.perf_counter() - start:.0f} s')
    return {name: np.concatenate(parts) for name, parts in features.items()}


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return [(train - mean) / std] + [(x - mean) / std for x in others]


def fit_linear(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, iterations: int = 150) -> Predictor:
    """L2-regularised logistic regression by L-BFGS (strong Wolfe line search)."""
    import torch

    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1, max_iter=iterations, history_size=20, line_search_fn='strong_wolfe'
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + l2 * weight.square().sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return lambda z: (z @ weight + bias).detach().argmax(1)


def fit_mlp(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    weight_decay: float,
    epochs: int,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[Predictor, list[float]]:
    """One hidden layer of :data:`MLP_HIDDEN` ReLU units, AdamW (lr 1e-3), batches of 256; the validation accuracy
    after each epoch when ``validation`` is given."""
    import torch

    torch.manual_seed(SEED)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], MLP_HIDDEN), torch.nn.ReLU(), torch.nn.Linear(MLP_HIDDEN, classes)
    )
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(SEED)
    history: list[float] = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 256):
            batch = order[start : start + 256]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        if validation is not None:
            with torch.no_grad():
                history.append(float((net(validation[0]).argmax(1) == validation[1]).float().mean()))
    return (lambda z: net(z).detach().argmax(1)), history


def run_probe(
    feature: str,
    kind: str,
    train: tuple[Array, Array, Array],
    heldout: tuple[Array, Array],
    classes: int,
    controls: Mapping[str, Array] | None = None,
) -> list[Probe]:
    """Fit a ``kind`` ('linear' or 'mlp') probe on ``train`` = (features, labels, scenes), its hyperparameters on
    the training rows of a fifth of the scenes, refit on all of them; score it on ``heldout`` = (features,
    labels) and on each control (other held-out features, scored against the same labels)."""
    import torch

    x_np, y_np, scenes = train
    x, y = torch.tensor(x_np, dtype=torch.float32), torch.tensor(y_np)
    z, y_heldout = torch.tensor(heldout[0], dtype=torch.float32), torch.tensor(heldout[1])
    unique = np.unique(scenes)
    rng = np.random.default_rng(SEED)
    validation_scenes = set(rng.choice(unique, max(1, len(unique) // 5), replace=False).tolist())
    is_validation = torch.tensor([s in validation_scenes for s in scenes])
    if bool(is_validation.all()):
        raise SystemExit(f'{feature}: too few training scenes for a validation split')
    fit_x, val_x = standardise(x[~is_validation], x[is_validation])
    fit_y, val_y = y[~is_validation], y[is_validation]
    hyperparameters: Any
    if kind == 'linear':
        scores = []
        for l2 in L2_GRID:
            predict = fit_linear(fit_x, fit_y, classes, l2)
            scores.append(float((predict(val_x) == val_y).float().mean()))
        # ties go to the stronger L2
        hyperparameters = L2_GRID[int(np.argmax(np.array(scores) + 1e-9 * np.arange(len(L2_GRID))))]
        all_x, *scored = standardise(x, z, *(torch.tensor(c, dtype=torch.float32) for c in (controls or {}).values()))
        predict = fit_linear(all_x, y, classes, hyperparameters)
    else:
        histories = [fit_mlp(fit_x, fit_y, classes, wd, MLP_EPOCHS, (val_x, val_y))[1] for wd in MLP_WEIGHT_DECAYS]
        scores = [max(h) for h in histories]
        best = int(np.argmax(scores))
        hyperparameters = (MLP_WEIGHT_DECAYS[best], int(np.argmax(histories[best])) + 1)
        all_x, *scored = standardise(x, z, *(torch.tensor(c, dtype=torch.float32) for c in (controls or {}).values()))
        predict, _ = fit_mlp(all_x, y, classes, *hyperparameters)

    def accuracy(features: torch.Tensor, labels: torch.Tensor) -> float:
        return float((predict(features) == labels).float().mean())

    n_train, n_heldout = len(y), len(y_heldout)
    probes = [
        Probe(
            feature,
            kind,
            accuracy(scored[0], y_heldout),
            accuracy(all_x, y),
            n_train,
            n_heldout,
            max(scores),
            hyperparameters,
        )
    ]
    for name, control in zip((controls or {}), scored[1:], strict=True):
        probes.append(Probe(f'{feature}; {name}', kind, accuracy(control, y_heldout), None, n_train, n_heldout))
    return probes


def probe_type(
    question_type: str,
    models: Sequence[str],
    train: Mapping[str, dict[str, Array]],
    heldout: Mapping[str, dict[str, Array]],
    train_rows: Rows,
    heldout_rows: Rows,
    log: Callable[[str], None],
) -> TypeResult:
    """Every probe of one question type: the pixels (from the first model's pass), then each model's features."""
    on_train, on_heldout = train_rows.types() == question_type, heldout_rows.types() == question_type
    labels_train = [r['answer_label'] for r, m in zip(train_rows.meta, on_train, strict=True) if m]
    labels_heldout = [r['answer_label'] for r, m in zip(heldout_rows.meta, on_heldout, strict=True) if m]
    labels = sorted(set(labels_train) | set(labels_heldout))
    classes = len(labels)
    y_train = np.array([labels.index(x) for x in labels_train])
    y_heldout = np.array([labels.index(x) for x in labels_heldout])
    scenes = np.array([r['object_id'] for r, m in zip(train_rows.meta, on_train, strict=True) if m])
    majority = float(np.bincount(y_heldout, minlength=classes).max() / len(y_heldout))
    result = TypeResult(question_type, labels, len(y_train), len(y_heldout), majority)
    start = time.perf_counter()

    def fitted(feature: str, kind: str, x: Array, z: Array, controls: Mapping[str, Array] | None = None) -> None:
        result.probes.extend(run_probe(feature, kind, (x, y_train, scenes), (z, y_heldout), classes, controls))
        log(f'  {question_type}: {feature} ({kind}), {time.perf_counter() - start:.0f} s')

    pixels_train, pixels_heldout = train[models[0]], heldout[models[0]]
    if classes == 2:
        # label 1 iff the best shift is negative, or the mirror rule, whichever fits the training rows
        predicted_train = (pixels_train['best_shift'][on_train] < 0).astype(int)
        predicted_heldout = (pixels_heldout['best_shift'][on_heldout] < 0).astype(int)
        flip = int(np.mean(predicted_train == y_train) < 0.5)
        result.probes.append(
            Probe(
                'pixels: sign of the best horizontal shift between the images',
                'rule',
                float(np.mean((predicted_heldout ^ flip) == y_heldout)),
                float(np.mean((predicted_train ^ flip) == y_train)),
                len(y_train),
                len(y_heldout),
            )
        )
    colours_train, colours_heldout = pixels_train['colours'][on_train], pixels_heldout['colours'][on_heldout]

    def flat(a: Array) -> Array:
        return a.reshape(len(a), -1)

    fitted(
        'pixels: token-quadrant mean colours, both images (24)', 'linear', flat(colours_train), flat(colours_heldout)
    )
    fitted(
        'pixels: token-quadrant mean colours, both images (24)',
        'mlp',
        flat(colours_train),
        flat(colours_heldout),
        {'images swapped (against the unswapped label)': flat(colours_heldout[:, ::-1])},
    )
    for image in (0, 1):
        fitted(
            f'pixels: token-quadrant mean colours, image {image + 1} alone (12)',
            'mlp',
            flat(colours_train[:, image]),
            flat(colours_heldout[:, image]),
        )
    for model in models:
        tr, ho = train[model], heldout[model]
        fitted(
            f'{model} vision: patch cosines before the 2x2 merge (16x16)',
            'linear',
            tr['patch_cosines'][on_train],
            ho['patch_cosines'][on_heldout],
        )
        fitted(
            f'{model} vision: token cosines after the merge (4x4)',
            'linear',
            tr['token_cosines'][on_train],
            ho['token_cosines'][on_heldout],
        )
        for layer in range(tr['lm'].shape[1]):
            fitted(
                f'{model} LM layer {layer + 1}: answer position',
                'linear',
                tr['lm'][on_train][:, layer].astype(np.float32),
                ho['lm'][on_heldout][:, layer].astype(np.float32),
            )
        for part in ('lm_image1', 'lm_image2'):
            for layer in range(tr[part].shape[1]):
                fitted(
                    f'{model} LM layer {layer + 1}: {part} tokens (4x256)',
                    'linear',
                    flat(tr[part][on_train][:, layer].astype(np.float32)),
                    flat(ho[part][on_heldout][:, layer].astype(np.float32)),
                )
        result.probes.append(
            Probe(
                f"{model}: the model's own label word after '<think>\\n'",
                'none',
                own_word_accuracy(ho['words'][on_heldout], labels, y_heldout),
                own_word_accuracy(tr['words'][on_train], labels, y_train),
                len(y_train),
                len(y_heldout),
            )
        )
    return result


def own_word_accuracy(logits: Array, labels: Sequence[str], y: Array) -> float:
    """How often the model's most likely label word (logits over :data:`LABEL_WORDS`' first tokens) is the label."""
    return float(np.mean(np.array(LABEL_WORDS)[logits.argmax(1)] == np.array(labels)[y]))


def render(result: TypeResult) -> str:
    """A Markdown table of one question type's probes, headed by its rows and majority rate."""

    def percent(value: float | None) -> str:
        return '-' if value is None else f'{100.0 * value:.1f}'

    lines = [
        f'{result.question_type} ({", ".join(result.labels)}): {result.n_train:,} training rows, '
        f'{result.n_heldout:,} held out; majority rate (held out) {percent(result.majority)} %',
        '',
        '| feature | held-out % | train % | rows (train / held out) |',
        '|---|---|---|---|',
    ]
    for p in result.probes:
        name = p.feature if p.kind == 'none' else f'{p.feature}, {p.kind}'
        lines.append(
            f'| {name} | {percent(p.heldout_acc)} | {percent(p.train_acc)} | {p.n_train:,} / {p.n_heldout:,} |'
        )
    return '\n'.join(lines)


def machine() -> str:
    """CPU model (``benchmarks/machine.py``, loaded by path), cores, architecture, Python and torch versions."""
    import torch

    spec = importlib.util.spec_from_file_location('machine', Path(__file__).with_name('machine.py'))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cpu = module.cpu_model()
    return (
        f'{cpu}, {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, '
        f'torch {torch.__version__}'
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('out_dir', type=Path, help='a benchmarks/learning.py output folder (data/, base/, sft/)')
    parser.add_argument('--models', nargs='+', default=['base', 'sft'], help='model folders in OUT_DIR')
    parser.add_argument(
        '--cap-rotation', type=int, default=None, help='at most N training rotation rows (default: all; 0: none)'
    )
    parser.add_argument(
        '--cap-translation',
        type=int,
        default=0,
        help='at most N training rows of each translation type (default 0: rotation only)',
    )
    parser.add_argument('--threads', type=int, default=1, help='torch threads (the recorded figures: 1)')
    parser.add_argument('--json', type=Path, default=None, help='results file (default OUT_DIR/probe.json)')
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(message: str) -> None:
        print(message, flush=True)

    out_dir: Path = args.out_dir
    train_caps: dict[str, int | None] = {}
    if args.cap_rotation is None or args.cap_rotation > 0:
        train_caps['rotation'] = args.cap_rotation
    if args.cap_translation > 0:
        train_caps.update(dict.fromkeys(TRANSLATION_TYPES, args.cap_translation))
    if not train_caps:
        parser.error('no question type left: --cap-rotation 0 needs --cap-translation N')
    for model in args.models:
        if not (out_dir / model / 'config.json').exists():
            parser.error(f'no model in {out_dir / model}')
    train_rows = load_rows(out_dir / 'data' / 'train', train_caps)
    heldout_rows = load_rows(out_dir / 'data' / 'heldout', dict.fromkeys(train_caps))
    log(f'{out_dir}: {len(train_rows.meta)} training rows, {len(heldout_rows.meta)} held out')
    train: dict[str, dict[str, Array]] = {}
    heldout: dict[str, dict[str, Array]] = {}
    for index, model in enumerate(args.models):
        train[model] = extract(out_dir / model, train_rows, pixels=index == 0, log=log)
        heldout[model] = extract(out_dir / model, heldout_rows, pixels=index == 0, log=log)
    results = [
        probe_type(question_type, args.models, train, heldout, train_rows, heldout_rows, log)
        for question_type in train_caps
    ]
    wall = time.perf_counter() - start
    print()
    for result in results:
        print(render(result))
        print()
    print(f'{wall:.0f} s at {args.threads} thread(s)')
    path: Path = args.json or out_dir / 'probe.json'
    record = {
        'out_dir': str(out_dir),
        'models': args.models,
        'cap_rotation': args.cap_rotation,
        'cap_translation': args.cap_translation,
        'threads': args.threads,
        'machine': machine(),
        'date': time.strftime('%Y-%m-%d'),
        'wall_s': round(wall, 1),
        'types': [asdict(r) for r in results],
    }
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

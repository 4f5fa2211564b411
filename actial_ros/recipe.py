"""What a trained checkpoint was trained with, saved beside its weights (``actial_recipe.json``), so that
evaluating, serving or deploying it needs no flag that restates the recipe.

A checkpoint answers best with the system prompt it was trained with (``../shared/notes/ACTIAL.md``); the
from-scratch recipe trains with none (``''``), the node's default is the Actial prompt. ``actial-ros-train sft``
and ``grpo`` write the file; ``actial-ros-train evaluate`` and the node's ``transformers`` backend read it when no
system prompt is given (a flag or parameter still overrides); ``actial-ros serve`` prints it (the system prompt is
sent by the client, not the server). The image size needs no entry of its own: the processor saved with the
checkpoint carries its ``max_pixels``.

ROS-free and torch-free: robots read it too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from actial_ros.errors import ConfigError
from actial_ros.questions import DEFAULT_SYSTEM_PROMPT

__all__ = [
    'QWEN_TEMPLATE_SYSTEM_PROMPT',
    'RECIPE_FILE',
    'CheckpointRecipe',
    'read_recipe',
    'resolve_system_prompt',
    'sent_system_prompt',
    'write_recipe',
]

RECIPE_FILE = 'actial_recipe.json'
"""The recipe's file name in a checkpoint directory."""

QWEN_TEMPLATE_SYSTEM_PROMPT = 'You are a helpful assistant.'
"""The system message Qwen2.5-VL's chat template adds to a conversation that has none: what a checkpoint trained
with ``system_prompt: ''`` saw in every training conversation."""


@dataclass(frozen=True, slots=True)
class CheckpointRecipe:
    """The settings a checkpoint's answers depend on.

    Attributes:
        stage: ``'sft'`` or ``'grpo'`` (what wrote the checkpoint).
        system_prompt: the system message of every training conversation; ``''``: none (Qwen2.5-VL's chat template
            then adds its own default, ``You are a helpful assistant.``).
        max_pixels: the image processor's ``max_pixels`` in training (``None``: the base checkpoint's).
        max_image_width, max_image_height: images were first downscaled to fit these (pixels).
        base_model: the checkpoint training started from.
        data: the training data (paths or hub ids).
        steps: optimizer steps taken (``None``: unknown).
    """

    stage: str
    system_prompt: str
    max_pixels: int | None = None
    max_image_width: int | None = None
    max_image_height: int | None = None
    base_model: str = ''
    data: tuple[str, ...] = ()
    steps: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``data`` as a list)."""
        record = asdict(self)
        record['data'] = list(self.data)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> CheckpointRecipe:
        """The recipe of a dict written by :meth:`to_json`; unknown keys are ignored (newer writers).

        Raises:
            ConfigError: a missing ``stage`` or ``system_prompt``, or a value of the wrong type.
        """
        try:
            return cls(
                stage=str(record['stage']),
                system_prompt=_string(record['system_prompt']),
                max_pixels=_optional_int(record.get('max_pixels')),
                max_image_width=_optional_int(record.get('max_image_width')),
                max_image_height=_optional_int(record.get('max_image_height')),
                base_model=str(record.get('base_model') or ''),
                data=tuple(str(item) for item in record.get('data') or ()),
                steps=_optional_int(record.get('steps')),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f'not a checkpoint recipe ({type(exc).__name__}: {exc})') from None


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f'expected a string, got {type(value).__name__}')
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def write_recipe(recipe: CheckpointRecipe, checkpoint: str | Path) -> Path:
    """Write ``recipe`` as ``checkpoint/actial_recipe.json`` (whole or not at all); returns the path."""
    path = Path(checkpoint) / RECIPE_FILE
    partial = path.with_suffix('.partial')
    partial.write_text(json.dumps(recipe.to_json(), indent=2) + '\n', encoding='utf-8')
    os.replace(partial, path)
    return path


def read_recipe(checkpoint: str | Path | None) -> CheckpointRecipe | None:
    """The recipe saved in a checkpoint directory; ``None`` for a directory without one, a hub id, or no checkpoint
    (a model behind an endpoint).

    Raises:
        ConfigError: the file exists but is not a recipe (unreadable, not JSON, missing keys).
    """
    if checkpoint is None or not str(checkpoint).strip():
        return None
    path = Path(str(checkpoint).strip()).expanduser() / RECIPE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise ConfigError(f'{path}: cannot read the checkpoint recipe ({exc})') from None
    if not isinstance(record, dict):
        raise ConfigError(f'{path}: a checkpoint recipe is a JSON object')
    return CheckpointRecipe.from_json(record)


def resolve_system_prompt(explicit: str | None, checkpoint: str | Path | None) -> str:
    """The system prompt to send to ``checkpoint``: ``explicit`` when given (``''`` too: no system message), else
    the one it was trained with (:func:`read_recipe`), else :data:`~actial_ros.questions.DEFAULT_SYSTEM_PROMPT` (also
    for ``checkpoint`` ``None``: a model behind an endpoint, whose recipe cannot be read here).

    Raises:
        ConfigError: the checkpoint's recipe file is broken.
    """
    if explicit is not None:
        return explicit
    recipe = read_recipe(checkpoint)
    return recipe.system_prompt if recipe is not None else DEFAULT_SYSTEM_PROMPT


def sent_system_prompt(recipe: CheckpointRecipe) -> str:
    """The system message a client must send so that the model sees what it was trained with: the recipe's prompt,
    or for a recipe without one, the chat template's default (:data:`QWEN_TEMPLATE_SYSTEM_PROMPT`; a client whose
    empty setting means "the package default", as the node's ``system_prompt`` parameter does, cannot say "none")."""
    return recipe.system_prompt or QWEN_TEMPLATE_SYSTEM_PROMPT

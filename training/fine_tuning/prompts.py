"""Conversations for training and evaluation: system prompt, images + question, target.

One layout everywhere (../shared/notes/ACTIAL.md, CONVENTIONS.md): a system message (a configuration value,
default :data:`actial_ros.questions.DEFAULT_SYSTEM_PROMPT`; an empty string sends none, and the Qwen chat
template then inserts its own "You are a helpful assistant."), one user message holding the images then
the question text, and for SFT one assistant message in ``<think> ... </think> <answer> ... </answer>``
format.

Messages use string contents; TRL's ``prepare_multimodal_messages`` inserts one image placeholder per
image before the user text, which is where the Qwen2.5-VL template puts ``<|vision_start|><|image_pad|>
<|vision_end|>`` (the same order as :class:`actial_ros.backends.vllm.VllmBackend` sends them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actial_ros.chat import IMAGE_PLACEHOLDER, chat_messages
from actial_ros.questions import CLOSING_INSTRUCTION, format_options

__all__ = [
    'DEFAULT_MC_TARGET',
    'MC_CLOSING',
    'conversation',
    'mc_target',
    'multiple_choice_text',
    'structured_messages',
]

DEFAULT_MC_TARGET = '<think>\n</think>\n<answer>{letter}</answer>'
"""SFT target of a multiple-choice row (no chain of thought): an empty think block and the letter.

Viewpoint-100K's multiple-choice rows carry only the answer. Wrapping it in the output format (rather
than training on the bare letter) keeps the format of the system prompt on 100 % of the SFT data, so the
SFT model already earns the GRPO format reward; the 10 % CoT rows teach what goes inside ``<think>``. Set
``mc_target_template: '{letter}'`` in ``config/training/sft.yaml`` for the bare-letter variant.
Placeholders: ``{letter}`` (e.g. ``B``), ``{option}`` (the option text), ``{label}`` (``left``...)."""

MC_CLOSING = CLOSING_INSTRUCTION
"""Closing instruction of multiple-choice prompts built here (:data:`actial_ros.questions.CLOSING_INSTRUCTION`:
the viewpoint questions end the same way)."""


def multiple_choice_text(question: str, options: Sequence[str], closing: str = MC_CLOSING) -> str:
    """``question``, the lettered options (``A. ...``, one per line) and the closing instruction.

    Raises:
        ValueError: more than 26 options or none.
    """
    parts = [question.strip(), format_options(options)]
    if closing:
        parts.append(closing)
    return '\n'.join(parts)


def mc_target(template: str, *, letter: str, option: str = '', label: str = '') -> str:
    """Fill the multiple-choice SFT target ``template`` (see :data:`DEFAULT_MC_TARGET`).

    Raises:
        KeyError: the template names another placeholder.
    """
    return template.format(letter=letter, option=option, label=label)


def conversation(question: str, *, system_prompt: str, target: str | None = None) -> list[dict[str, str]]:
    """Messages with string contents: [system], user (question text), [assistant (target)].

    Args:
        question: the user text (the images are added by TRL / :func:`structured_messages`).
        system_prompt: the system message; ``''`` sends none.
        target: the assistant reply for SFT; ``None`` for prompts (GRPO, evaluation).
    """
    return chat_messages(question, system_prompt=system_prompt, target=target)


def structured_messages(question: str, *, system_prompt: str, num_images: int) -> list[dict[str, Any]]:
    """Messages with typed content parts for ``processor.apply_chat_template`` (evaluation, benchmarks).

    The user message is ``num_images`` ``{'type': 'image'}`` parts then one text part.
    """
    return chat_messages(question, system_prompt=system_prompt, images=[IMAGE_PLACEHOLDER] * num_images)

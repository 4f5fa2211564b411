"""The chat-message layout of every prompt the project sends or trains on (ROS-free).

One layout, in the OpenAI / Hugging Face chat format: the system prompt as a string message (none when it is
``''``), then the user message (the images first, then the text), then, for SFT targets, the assistant reply.
Used by the vLLM backend and the evaluation endpoint (images as ``image_url`` parts with JPEG data URLs), the
transformers backend and in-process evaluation (``{'type': 'image'}`` placeholders that the processor fills),
the training prompts (text only: TRL adds the images) and the teacher that writes chains of thought.
Qwen2.5-VL's chat template renders a string system prompt and a one-text-part one identically (checked with the
tiny model's processor), so the string form is the one kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ['IMAGE_PLACEHOLDER', 'chat_messages', 'image_url_part']

IMAGE_PLACEHOLDER: dict[str, str] = {'type': 'image'}
"""An image part for ``processor.apply_chat_template`` (the processor is given the pixels separately)."""


def image_url_part(url: str) -> dict[str, Any]:
    """An ``image_url`` content part (OpenAI-compatible APIs, vLLM): ``url`` is usually a JPEG data URL
    (:func:`actial_ros.imaging.jpeg_data_url`)."""
    return {'type': 'image_url', 'image_url': {'url': url}}


def chat_messages(
    text: str,
    *,
    system_prompt: str,
    images: Sequence[dict[str, Any]] | None = None,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """``[system], user, [assistant]`` messages.

    Args:
        text: the user text (question, options, closing instruction).
        system_prompt: the system message; ``''`` sends none.
        images: the user message's image parts, before the text (:func:`image_url_part`,
            :data:`IMAGE_PLACEHOLDER`); ``None``: the user content is ``text`` as a plain string (TRL's dataset
            format, where the trainer adds the images).
        target: the assistant reply (SFT); ``None`` for a prompt.

    Returns:
        New message dicts (the image parts are copied, so callers may reuse theirs).
    """
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({'role': 'system', 'content': system_prompt})
    if images is None:
        messages.append({'role': 'user', 'content': text})
    else:
        messages.append({'role': 'user', 'content': [*(dict(part) for part in images), {'type': 'text', 'text': text}]})
    if target is not None:
        messages.append({'role': 'assistant', 'content': target})
    return messages

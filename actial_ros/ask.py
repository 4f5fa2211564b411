"""Free-form ask requests (``~/ask`` payloads): bounded, validated parsing (ROS-free).

A request is one JSON object ``{"id": ..., "question": ..., "target": "pair" | "frame"}``. The payload
arrives from any publisher on the robot's network, so it is parsed within bounds before anything is
built from it: at most :data:`MAX_ASK_BYTES` bytes, JSON nesting at most :data:`MAX_ASK_DEPTH` deep
(checked by a linear scan BEFORE ``json.loads``, whose C decoder recurses once per level and raises
``RecursionError`` on a payload such as ``"[" * 100000``), a question of at most
:data:`MAX_QUESTION_CHARS` characters. Every violation is an :class:`AskRequestError` (a ``ValueError``)
with a reason; nothing else escapes :func:`parse_ask_request`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from actial_ros.errors import ActialError

__all__ = [
    'ASK_TARGETS',
    'MAX_ASK_BYTES',
    'MAX_ASK_DEPTH',
    'MAX_QUESTION_CHARS',
    'AskRequest',
    'AskRequestError',
    'loose_ask_id',
    'parse_ask_request',
]

MAX_ASK_BYTES = 64 * 1024
"""Largest accepted payload (UTF-8 bytes): a question is a sentence, not a document."""
MAX_ASK_DEPTH = 4
"""Deepest accepted JSON nesting (the request object itself is depth 1)."""
MAX_QUESTION_CHARS = 4000
"""Longest accepted question (characters)."""
MAX_ID_CHARS = 256
"""Longest accepted request id (characters)."""
ASK_TARGETS = ('pair', 'frame')
"""What a question is about: the latest pair (two images) or the latest frame (one image)."""


class AskRequestError(ActialError, ValueError):
    """An ask payload that is not a valid, bounded request (the message says why)."""


@dataclass(frozen=True, slots=True)
class AskRequest:
    """A validated free-form question.

    Attributes:
        ask_id: the caller's id, echoed in the answer record (may be empty).
        question: the question text (non-empty, at most :data:`MAX_QUESTION_CHARS`).
        target: ``'pair'`` or ``'frame'`` (:data:`ASK_TARGETS`).
    """

    ask_id: str
    question: str
    target: str = 'pair'


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """True when ``text`` nests JSON arrays/objects deeper than ``limit`` (brackets in strings ignored).

    A linear scan with no recursion: safe on any input, malformed JSON included.
    """
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            if depth > limit:
                return True
        elif char in ']}':
            depth -= 1
    return False


def _load(data: str | bytes) -> Any:
    if isinstance(data, bytes):
        if len(data) > MAX_ASK_BYTES:
            raise AskRequestError(f'payload of {len(data)} bytes exceeds {MAX_ASK_BYTES}')
        try:
            data = data.decode('utf-8')
        except UnicodeDecodeError as error:
            raise AskRequestError(f'payload is not UTF-8: {error}') from None
    if len(data) > MAX_ASK_BYTES or len(data.encode('utf-8', errors='replace')) > MAX_ASK_BYTES:
        raise AskRequestError(f'payload exceeds {MAX_ASK_BYTES} bytes')
    if _json_depth_exceeds(data, MAX_ASK_DEPTH):
        raise AskRequestError(f'JSON nested deeper than {MAX_ASK_DEPTH} levels')
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: belt and braces behind the depth scan
        raise AskRequestError(f'not JSON: {error}') from None


def parse_ask_request(data: str | bytes) -> AskRequest:
    """Parse and validate one ask payload.

    Args:
        data: the ``std_msgs/String`` data (``str``), or raw UTF-8 bytes.

    Returns:
        The request; ``id`` defaults to ``''`` and ``target`` to ``'pair'``.

    Raises:
        AskRequestError: too large, too deeply nested, not JSON, not an object, an empty or too long
            question, a non-scalar or too long id, or a target other than ``'pair'`` / ``'frame'``.
    """
    request = _load(data)
    if not isinstance(request, dict):
        raise AskRequestError(f'expected a JSON object, got {type(request).__name__}')
    question = request.get('question')
    if not isinstance(question, str) or not question.strip():
        raise AskRequestError('expected a JSON object with a non-empty string "question"')
    if len(question) > MAX_QUESTION_CHARS:
        raise AskRequestError(f'question of {len(question)} characters exceeds {MAX_QUESTION_CHARS}')
    raw_id = request.get('id', '')
    if isinstance(raw_id, (dict, list)):
        raise AskRequestError('"id" must be a string or a number')
    ask_id = '' if raw_id is None else str(raw_id)
    if len(ask_id) > MAX_ID_CHARS:
        raise AskRequestError(f'"id" of {len(ask_id)} characters exceeds {MAX_ID_CHARS}')
    target = request.get('target', 'pair')
    if target not in ASK_TARGETS:
        raise AskRequestError(f'"target" must be one of {list(ASK_TARGETS)}, got {str(target)[:40]!r}')
    return AskRequest(ask_id=ask_id, question=question, target=str(target))


def loose_ask_id(data: str | bytes) -> str:
    """The ``id`` of a payload that failed :func:`parse_ask_request`, when it can still be read safely
    (so the error reply reaches its caller), else ``''``. Never raises."""
    try:
        request = _load(data)
    except AskRequestError:
        return ''
    if not isinstance(request, dict):
        return ''
    raw_id = request.get('id', '')
    if isinstance(raw_id, (dict, list)) or raw_id is None:
        return ''
    return str(raw_id)[:MAX_ID_CHARS]

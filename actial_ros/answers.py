"""Parsing model output: ``<think> ... </think> <answer> ... </answer>`` and bare option letters.

Source of the rules: ``../shared/notes/ACTIAL.md`` (the official format and accuracy rewards) and
``../shared/notes/CONVENTIONS.md`` (parsing is tolerant of whitespace, case and a bare letter; the
format reward requires the tags).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ['ParsedAnswer', 'extract_answer_block', 'matches_output_format', 'parse_answer']

_FORMAT_RE = re.compile(r'^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$', re.IGNORECASE | re.DOTALL)
_ANSWER_RE = re.compile(r'<answer>(.*?)</answer>', re.IGNORECASE | re.DOTALL)
_THINK_RE = re.compile(r'<think>(.*?)</think>', re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r'</?\s*(think|answer)\s*>', re.IGNORECASE)
# An option letter: "B", "(B)", "B.", "B)", "B. The camera moved left", "Option B", "answer: b".
# A letter followed by a plain word ("a camera moved") is an article, not an option.
_LETTER_RE = re.compile(
    r'^\s*(?P<prefix>(?:the\s+)?(?:final\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:\-]?\s*)?'
    r'(?P<open>\()?\s*(?P<letter>[A-Za-z])\s*(?P<close>\))?(?P<rest>.*)$',
    re.IGNORECASE | re.DOTALL,
)


def matches_output_format(text: str) -> bool:
    """True when the WHOLE stripped text is one think block followed by one answer block.

    Tags are case-insensitive and whitespace is allowed between and around the blocks; nested or
    repeated tags fail (the paper's format reward).
    """
    match = _FORMAT_RE.match(text)
    if match is None:
        return False
    return len(_THINK_RE.findall(text)) == 1 and len(_ANSWER_RE.findall(text)) == 1 and _count_tags(text) == 4


def _count_tags(text: str) -> int:
    return len(_TAG_RE.findall(text))


def extract_answer_block(text: str) -> str | None:
    """Stripped content of the FIRST ``<answer>`` block, or ``None`` when there is none."""
    match = _ANSWER_RE.search(text)
    return None if match is None else match.group(1).strip()


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """What was read from a model's output.

    Attributes:
        letter: the option letter (upper case), or ``None`` when none could be read.
        answer_text: stripped content of the first ``<answer>`` block, or the whole stripped text when
            there are no tags.
        think: stripped content of the first ``<think>`` block, or ``None``.
        well_formatted: :func:`matches_output_format` on the raw text.
    """

    letter: str | None
    answer_text: str
    think: str | None
    well_formatted: bool


def parse_answer(text: str, *, letters: str = 'ABC') -> ParsedAnswer:
    """Read the option letter from a model's output.

    The first ``<answer>`` block is used when present; otherwise the whole text. The content must be
    a single letter, optionally decorated (``B``, ``(B)``, ``B.``, ``Option B``, ``answer: b``, or a
    letter followed by the option text). Letters outside ``letters`` give ``letter=None``.

    Args:
        text: raw model output.
        letters: the valid option letters.
    """
    think_match = _THINK_RE.search(text)
    think = None if think_match is None else think_match.group(1).strip()
    block = extract_answer_block(text)
    answer_text = block if block is not None else _TAG_RE.sub('', text).strip() if think is None else ''
    letter: str | None = None
    if answer_text:
        letter = _read_letter(answer_text, letters)
    return ParsedAnswer(
        letter=letter,
        answer_text=answer_text,
        think=think,
        well_formatted=matches_output_format(text),
    )


def _read_letter(text: str, letters: str) -> str | None:
    match = _LETTER_RE.match(text)
    if match is None:
        return None
    rest = match.group('rest').lstrip()
    decorated = bool(match.group('prefix')) or bool(match.group('open') and match.group('close'))
    if not (decorated or match.group('close') or not rest or rest[0] in '.:,;'):
        return None
    candidate = match.group('letter').upper()
    return candidate if candidate in letters.upper() else None

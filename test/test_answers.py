"""Tests of actial_ros.answers on hand-written (and adversarial) model completions."""

from __future__ import annotations

import pytest

from actial_ros.answers import extract_answer_block, matches_output_format, parse_answer


def test_well_formed_completion() -> None:
    parsed = parse_answer('<think>The camera moved left around the head.</think> <answer>B</answer>')
    assert parsed.letter == 'B'
    assert parsed.think == 'The camera moved left around the head.'
    assert parsed.answer_text == 'B'
    assert parsed.well_formatted is True


def test_whitespace_everywhere_is_well_formatted() -> None:
    text = '  \n<think>\nstep 1\nstep 2\n</think>\n\n<answer>\n C \n</answer>\n  '
    parsed = parse_answer(text)
    assert parsed.letter == 'C'
    assert parsed.answer_text == 'C'
    assert parsed.think == 'step 1\nstep 2'
    assert parsed.well_formatted is True


def test_two_answer_tags_use_the_first_and_are_not_well_formatted() -> None:
    parsed = parse_answer('<think>hmm</think><answer>A</answer><answer>C</answer>')
    assert parsed.letter == 'A'
    assert parsed.answer_text == 'A'
    assert parsed.well_formatted is False
    assert extract_answer_block('<answer> C </answer> <answer>A</answer>') == 'C'


def test_text_after_answer_is_not_well_formatted() -> None:
    parsed = parse_answer('<think>x</think><answer>B</answer> I hope this helps!')
    assert parsed.letter == 'B'
    assert parsed.well_formatted is False


def test_text_before_think_is_not_well_formatted() -> None:
    parsed = parse_answer('Sure. <think>x</think><answer>B</answer>')
    assert parsed.letter == 'B'
    assert parsed.well_formatted is False


def test_empty_think_is_still_well_formatted() -> None:
    for text in ('<think></think><answer>C</answer>', '<think> </think> <answer>C</answer>'):
        parsed = parse_answer(text)
        assert parsed.letter == 'C'
        assert parsed.think == ''
        assert parsed.well_formatted is True


def test_missing_answer_tag_with_think_gives_no_letter() -> None:
    parsed = parse_answer('<think>The camera turned left, so the answer is B.</think>')
    assert parsed.letter is None
    assert parsed.think is not None
    assert parsed.well_formatted is False
    # A bare letter after the think block is not read either: with a think block, the answer tag is required.
    assert parse_answer('<think>x</think> B').letter is None


def test_answer_without_think_reads_the_letter_but_is_not_well_formatted() -> None:
    parsed = parse_answer('<answer>B</answer>')
    assert parsed.letter == 'B'
    assert parsed.think is None
    assert parsed.well_formatted is False


@pytest.mark.parametrize(
    ('text', 'letter'),
    [
        ('B', 'B'),
        ('b', 'B'),
        ('(b)', 'B'),
        ('B.', 'B'),
        ('B)', 'B'),
        ('  C  ', 'C'),
        ('Option C', 'C'),
        ('option a', 'A'),
        ('Answer: (c)', 'C'),
        ('The answer is B.', 'B'),
        ('A. The camera moved to the left', 'A'),
    ],
)
def test_bare_letters(text: str, letter: str) -> None:
    parsed = parse_answer(text)
    assert parsed.letter == letter
    assert parsed.think is None
    assert parsed.well_formatted is False


@pytest.mark.parametrize('text', ['D', '(d)', 'Option D', '<think>x</think><answer>D</answer>'])
def test_letter_outside_the_options_is_none(text: str) -> None:
    assert parse_answer(text).letter is None


def test_letters_argument_widens_the_options() -> None:
    assert parse_answer('D', letters='ABCD').letter == 'D'
    assert parse_answer('d', letters='abcd').letter == 'D'


def test_letter_outside_options_inside_tags_is_still_well_formatted() -> None:
    parsed = parse_answer('<think>x</think><answer>D</answer>')
    assert parsed.letter is None
    assert parsed.answer_text == 'D'
    assert parsed.well_formatted is True


def test_tags_are_case_insensitive() -> None:
    parsed = parse_answer('<THINK>reasoning</Think>  <Answer> a </ANSWER>')
    assert parsed.letter == 'A'
    assert parsed.think == 'reasoning'
    assert parsed.well_formatted is True


@pytest.mark.parametrize(
    'text',
    [
        'Because the camera moved left.',
        '<think>x</think><answer>Because the object turned</answer>',
        'Bb',
        'Camera moved left',
        'I think B',
        '',
        '   ',
        '<think>x</think><answer></answer>',
    ],
)
def test_words_starting_with_a_letter_are_not_letters(text: str) -> None:
    assert parse_answer(text).letter is None


def test_empty_answer_block_is_well_formatted_but_has_no_letter() -> None:
    parsed = parse_answer('<think>x</think><answer></answer>')
    assert parsed.letter is None
    assert parsed.answer_text == ''
    assert parsed.well_formatted is True


@pytest.mark.parametrize(
    'text',
    [
        '<think><think>x</think></think><answer>A</answer>',
        '<think>x</think><think>y</think><answer>A</answer>',
        '<think>x</think><answer>A<answer>B</answer></answer>',
        '<think>x<answer>A</answer></think><answer>A</answer>',
        '<answer>A</answer><think>x</think>',
        '<think>x</think>',
        'A',
    ],
)
def test_malformed_structures_fail_the_format_check(text: str) -> None:
    assert matches_output_format(text) is False
    assert parse_answer(text).well_formatted is False


def test_extract_answer_block() -> None:
    assert extract_answer_block('no tags here') is None
    assert extract_answer_block('<ANSWER>\n b \n</answer>') == 'b'


def test_article_a_is_not_option_a() -> None:
    assert parse_answer('a camera moving to the left').letter is None

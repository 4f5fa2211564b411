"""Tests of actial_ros.questions: seeded option shuffling, answer letters, prompt text, type parsing."""

from __future__ import annotations

import random
import re

import pytest

from actial_ros.enums import QuestionType, ViewpointLabel
from actial_ros.errors import ConfigError
from actial_ros.questions import (
    CLOSING_INSTRUCTION,
    DEFAULT_SYSTEM_PROMPT,
    OPTION_LETTERS,
    PREAMBLE,
    Question,
    format_options,
    make_question,
    parse_question_types,
)

ALL_TYPES = tuple(QuestionType)
ALL_LABELS = (ViewpointLabel.LEFT, ViewpointLabel.RIGHT, ViewpointLabel.NONE)


@pytest.mark.parametrize('kind', ALL_TYPES)
def test_same_seed_gives_same_question(kind: QuestionType) -> None:
    for seed in range(20):
        first = make_question(kind, ViewpointLabel.LEFT, random.Random(seed))
        second = make_question(kind, ViewpointLabel.LEFT, random.Random(seed))
        assert first == second
        assert first.text == second.text


def test_a_seeded_stream_is_reproducible() -> None:
    def stream(seed: int) -> list[tuple[ViewpointLabel, ...]]:
        rng = random.Random(seed)
        return [make_question(kind, 'right', rng).option_labels for kind in ALL_TYPES * 5]

    assert stream(3) == stream(3)


@pytest.mark.parametrize('kind', ALL_TYPES)
def test_all_six_orders_occur_over_seeds(kind: QuestionType) -> None:
    orders = {make_question(kind, 'none', random.Random(seed)).option_labels for seed in range(300)}
    assert len(orders) == 6
    for order in orders:
        assert sorted(order) == sorted(ALL_LABELS)


@pytest.mark.parametrize('kind', ALL_TYPES)
@pytest.mark.parametrize('truth', ALL_LABELS)
def test_answer_letter_points_at_the_truth(kind: QuestionType, truth: ViewpointLabel) -> None:
    for seed in range(12):
        question = make_question(kind, truth, random.Random(seed))
        letter = question.answer_letter
        assert letter in OPTION_LETTERS
        assert letter is not None
        index = OPTION_LETTERS.index(letter)
        assert question.option_labels[index] is truth
        assert question.label_for_letter(letter) is truth
        assert question.label_for_letter(letter.lower()) is truth
        assert question.letter_for_label(truth) == letter
        # The letter's line in the prompt shows the option text of the truth.
        assert f'\n{letter}. {question.options[index]}\n' in question.text


def test_option_texts_match_labels() -> None:
    for kind in ALL_TYPES:
        question = make_question(kind, None, random.Random(0))
        assert len(set(question.options)) == 3
        for text, label in zip(question.options, question.option_labels, strict=True):
            if label is ViewpointLabel.NONE:
                assert 'not' in text
            else:
                assert label.value in text
        if kind is QuestionType.ROTATION:
            assert all('rotate' in text for text in question.options)


def test_unknown_truth_gives_no_letter() -> None:
    question = make_question('rotation', None, random.Random(1))
    assert question.truth is None
    assert question.answer_letter is None
    assert question.label_for_letter(None) is None
    assert question.label_for_letter('D') is None
    assert question.label_for_letter(' b ') is question.option_labels[1]


@pytest.mark.parametrize('kind', ALL_TYPES)
def test_text_starts_with_preamble_and_ends_asking_for_letter(kind: QuestionType) -> None:
    question = make_question(kind, 'left', random.Random(5))
    lines = question.text.split('\n')
    first = lines[0].lower()
    assert 'object' in first
    assert re.search(r'object\b.*\bdid not move', first)
    last = lines[-1].lower()
    assert 'letter' in last
    assert question.text.rstrip().endswith('.')
    assert lines[-1] not in question.options
    # Options appear lettered, in display order, just before the closing line.
    lettered = [f'{letter}. {text}' for letter, text in zip(OPTION_LETTERS, question.options, strict=True)]
    assert lines[-4:-1] == lettered
    assert format_options(question.options) in question.text
    assert lines[0] == PREAMBLE and lines[-1] == CLOSING_INSTRUCTION  # the one home training uses too


def test_options_are_lettered_a_to_z_and_never_cut() -> None:
    texts = [f'option {k}' for k in range(26)]
    lines = format_options(texts).split('\n')
    assert lines[0] == 'A. option 0' and lines[3] == 'D. option 3' and lines[-1] == 'Z. option 25'
    for bad in ([], [*texts, 'one too many']):
        with pytest.raises(ValueError, match='1 to 26 options'):
            format_options(bad)


def test_stems_differ_between_types() -> None:
    texts = {make_question(kind, 'left', random.Random(0)).text for kind in ALL_TYPES}
    assert len(texts) == 3
    ego = make_question('ego_translation', 'left', random.Random(0)).text
    obj = make_question('object_translation', 'left', random.Random(0)).text
    assert "camera's perspective" in ego
    assert "object's perspective" in obj


def test_make_question_rejects_unknown_type_and_label() -> None:
    with pytest.raises(ValueError):
        make_question('pitch', 'left', random.Random(0))
    with pytest.raises(ValueError):
        make_question('rotation', 'up', random.Random(0))


def test_question_is_frozen() -> None:
    question = make_question('rotation', 'left', random.Random(0))
    assert isinstance(question, Question)
    with pytest.raises(AttributeError):
        question.truth = ViewpointLabel.RIGHT  # type: ignore[misc]


def test_default_system_prompt_states_the_tag_contract() -> None:
    for tag in ('<think>', '</think>', '<answer>', '</answer>'):
        assert tag in DEFAULT_SYSTEM_PROMPT
    assert 'letter' in DEFAULT_SYSTEM_PROMPT


def test_parse_question_types_keeps_order_and_removes_duplicates() -> None:
    parsed = parse_question_types(['rotation', ' ego_translation ', 'rotation', 'object_translation'])
    assert parsed == (QuestionType.ROTATION, QuestionType.EGO_TRANSLATION, QuestionType.OBJECT_TRANSLATION)


def test_parse_question_types_errors() -> None:
    with pytest.raises(ConfigError, match='at least one'):
        parse_question_types([])
    with pytest.raises(ConfigError, match='yaw') as info:
        parse_question_types(['rotation', 'yaw'])
    # The message lists the known identifiers; ConfigError is a ValueError.
    assert 'ego_translation' in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ConfigError):
        parse_question_types(['Rotation'])

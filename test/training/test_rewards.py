"""The GRPO rewards on hand-written completions, adversarial ones included (ACTIAL.md's official rules)."""

from __future__ import annotations

from typing import Any

import pytest
from actial_ros.training.fine_tuning.rewards import (
    DEFAULT_REWARD_WEIGHTS,
    accuracy_reward,
    completion_text,
    format_reward,
    reward_functions,
    score_completion,
)

# (completion, ground truth, format reward, accuracy reward)
CASES = [
    ('<think>moved left</think><answer>B</answer>', 'B', 1.0, 1.0),
    ('  <THINK> a </Think>\n\n <Answer> B </ANSWER>  \n', 'B', 1.0, 1.0),  # case and whitespace
    ('<think></think><answer>B</answer>', 'B', 1.0, 1.0),  # empty think is still the format
    ('<think>x</think><answer>C</answer>', 'B', 1.0, 0.0),  # well formatted, wrong
    ('<think>x</think><answer>b</answer>', 'B', 1.0, 0.0),  # exact comparison is case-sensitive
    ('<think>x</think><answer>B</answer> I am sure.', 'B', 0.0, 1.0),  # text after the answer
    ('Sure! <think>x</think><answer>B</answer>', 'B', 0.0, 1.0),  # text before the think block
    ('<think>x</think><answer>B</answer><answer>C</answer>', 'B', 0.0, 1.0),  # two answers: first is read
    ('<think>x</think><answer>C</answer><answer>B</answer>', 'B', 0.0, 0.0),
    ('<think>a</think><think>b</think><answer>B</answer>', 'B', 0.0, 1.0),  # two think blocks
    ('<answer>B</answer>', 'B', 0.0, 1.0),  # no think block
    ('<think>x</think>B', 'B', 0.0, 0.0),  # no answer tags: no accuracy either
    ('B', 'B', 0.0, 0.0),  # a bare letter parses for evaluation but earns no reward
    ('<think>x<answer>B</answer></think><answer>B</answer>', 'B', 0.0, 1.0),  # nested tags
    ('<think>x</think><answer>B.</answer>', 'B', 1.0, 0.0),  # decoration is not the exact answer
    ('<think>x</think><answer></answer>', 'B', 1.0, 0.0),  # empty answer
    ('', 'B', 0.0, 0.0),
    ('<think>x</think><answer>The camera moved left</answer>', ' The camera moved left ', 1.0, 1.0),
]


@pytest.mark.parametrize(('text', 'truth', 'fmt', 'acc'), CASES)
def test_rewards_on_hand_written_completions(text: str, truth: str, fmt: float, acc: float) -> None:
    assert format_reward([text]) == [fmt]
    assert accuracy_reward([text], solution=[truth]) == [acc]
    assert score_completion(text, truth) == pytest.approx(0.5 * fmt + 0.5 * acc)


def test_conversational_completions_and_extra_columns() -> None:
    completions = [
        [{'role': 'assistant', 'content': '<think>x</think><answer>A</answer>'}],
        [
            {
                'role': 'assistant',
                'content': [
                    {'type': 'text', 'text': '<think>x</think>'},
                    {'type': 'text', 'text': '<answer>C</answer>'},
                ],
            }
        ],
        [{'role': 'assistant', 'content': 'no tags'}],
    ]
    kwargs: dict[str, Any] = {
        'solution': ['A', 'B', 'C'],
        'images': [None] * 3,
        'source': ['sat'] * 3,
        'trainer_state': None,
    }
    assert format_reward(completions, **kwargs) == [1.0, 1.0, 0.0]
    assert accuracy_reward(completions, **kwargs) == [1.0, 0.0, 0.0]
    assert completion_text(completions[1]) == '<think>x</think><answer>C</answer>'


def test_weights_and_errors() -> None:
    assert DEFAULT_REWARD_WEIGHTS == (0.5, 0.5)
    assert reward_functions() == [format_reward, accuracy_reward]
    assert score_completion('<think>x</think><answer>A</answer>', 'A', weights=(0.2, 0.8)) == pytest.approx(1.0)
    assert score_completion('<answer>A</answer>', 'A', weights=(0.2, 0.8)) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        accuracy_reward(['a', 'b'], solution=['A'])
    with pytest.raises(ValueError):
        score_completion('x', 'A', weights=(1.0,))
    with pytest.raises(TypeError):
        completion_text(3)

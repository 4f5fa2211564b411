"""Teacher chain-of-thought: ask a large VLM behind any OpenAI-compatible endpoint (e.g. ``vllm serve``)
to reason about a pair, given the two images, the question and the ground truth as a hint, as the paper
did for its 1K pseudo-CoTs (ACTIAL.md).

A teacher text is accepted only when the whole output matches the paper's format
(:func:`actial_ros.answers.matches_output_format`) AND its ``<answer>`` letter equals the ground truth
(:func:`actial_ros.answers.parse_answer`); otherwise it is rejected and counted
(``rejected_format``, ``rejected_wrong_answer``); transport errors count as ``error``. Rejected rows keep
no CoT (never a CoT whose conclusion contradicts the label). Results are deterministic only when the
endpoint is (temperature 0 by default).

The requests go through the core's vLLM client (:class:`actial_ros.backends.vllm.VllmBackend`, its
:meth:`~actial_ros.backends.vllm.VllmBackend.ask_jpegs`: the stored JPEGs sent as they are), with its retries
(connection errors, HTTP 408, 409, 429, 5xx and timeouts, exponential backoff from 0.5 s up to 8 s) and its
bound of ``concurrency`` requests in flight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actial_ros.training.config import setting
from actial_ros.training.dataset.viewpoint import RowQuestion

from actial_ros.answers import matches_output_format, parse_answer
from actial_ros.enums import StrEnum
from actial_ros.errors import BackendError, ConfigError
from actial_ros.geometry import RelativePose

if TYPE_CHECKING:
    from actial_ros.backends.vllm import VllmBackend

__all__ = [
    'TEACHER_SYSTEM_PROMPT',
    'Teacher',
    'TeacherConfig',
    'TeacherRequest',
    'TeacherResult',
    'TeacherStatus',
    'ground_truth_hint',
]

TEACHER_SYSTEM_PROMPT = (
    'You are an expert in 3D spatial reasoning writing worked solutions for training data. You get two images '
    'of the same static object taken by one moving camera, a multiple-choice question about the camera motion, '
    'and the ground truth (answer and exact relative pose) as a hint. Write the reasoning a careful solver would '
    'follow, in five steps: 1. identify the images; 2. visual analysis in the camera frame and in the object '
    'frame; 3. analyse the movements (translation, yaw, pitch, roll); 4. synthesise the camera trajectory; '
    '5. give the answer. Reason from what the images show; do not say that you were given the answer. The final '
    'answer must be the ground-truth option letter. Output exactly: <think> your five steps </think> '
    '<answer>LETTER</answer>'
)
"""System prompt of the teacher (the paper's five-step template)."""


class TeacherStatus(StrEnum):
    """Outcome of one teacher request."""

    ACCEPTED = 'accepted'
    WRONG_ANSWER = 'rejected_wrong_answer'
    BAD_FORMAT = 'rejected_format'
    ERROR = 'error'


@dataclass(frozen=True, slots=True)
class TeacherConfig:
    """Where and how to ask the teacher.

    Attributes:
        base_url: OpenAI-compatible base URL (``http://host:8000/v1``).
        model: served model name.
        api_key_env: environment variable holding the API key (never logged; ``EMPTY`` when unset, which
            vLLM without ``--api-key`` accepts).
        timeout_s: per-request timeout (seconds).
        max_retries: retries of failed requests (timeouts included).
        max_tokens: completion length limit.
        temperature: sampling temperature (0: deterministic endpoints give deterministic datasets).
        concurrency: requests in flight at once per build process.
        system_prompt: the teacher's instructions.
    """

    # The fields with a help are also build-viewpoint flags and YAML keys (``key``; actial_ros.training.config).
    base_url: str = field(
        metadata=setting('OpenAI-compatible base URL of the teacher', key='teacher_url', command_default='')
    )
    model: str = field(metadata=setting('teacher model name', key='teacher_model', command_default=''))
    api_key_env: str = field(
        default='ACTIAL_TEACHER_API_KEY',
        metadata=setting('environment variable holding the teacher API key', key='teacher_api_key_env'),
    )
    timeout_s: float = field(default=120.0, metadata=setting('seconds per teacher request', key='teacher_timeout'))
    max_retries: int = 2
    max_tokens: int = field(default=1024, metadata=setting('teacher completion limit', key='teacher_max_tokens'))
    temperature: float = 0.0
    concurrency: int = field(
        default=4, metadata=setting('teacher requests in flight per worker', key='teacher_concurrency')
    )
    system_prompt: str = TEACHER_SYSTEM_PROMPT

    def __post_init__(self) -> None:
        if not self.base_url or not self.model:
            raise ConfigError('the teacher needs a base URL and a model name')
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(f'teacher timeout must be > 0, got {self.timeout_s}')
        if self.max_retries < 0 or self.max_tokens < 1 or self.concurrency < 1:
            raise ConfigError('teacher max_retries >= 0, max_tokens >= 1 and concurrency >= 1 are required')


@dataclass(frozen=True, slots=True)
class TeacherRequest:
    """One question to explain: JPEG bytes of both images, the question and the ground-truth hint."""

    image_1: bytes
    image_2: bytes
    question: RowQuestion
    hint: str


@dataclass(frozen=True, slots=True)
class TeacherResult:
    """The teacher's text (``None`` unless accepted), the status and, when rejected, why."""

    status: TeacherStatus
    text: str | None
    reason: str = ''


def ground_truth_hint(question: RowQuestion, pose: RelativePose, unit: str) -> str:
    """The hint given to the teacher: the correct option and the exact relative pose, in words and numbers."""
    option = question.options[question.letters.index(question.answer)]
    x, y, z = (float(v) for v in pose.translation)
    return (
        f'Ground truth: option {question.answer} ("{option}"). Exact relative pose of camera 2 in camera 1\'s '
        f'frame (x right, y down, z forward): camera 2 centre at ({x:+.3f}, {y:+.3f}, {z:+.3f}) {unit}; '
        f'yaw {pose.yaw_deg:+.1f} deg (positive = turned right), pitch {pose.pitch_deg:+.1f} deg (positive = '
        f'tilted up), roll {pose.roll_deg:+.1f} deg.'
    )


class Teacher:
    """Client of the teacher endpoint (thread-safe; one per process).

    Args:
        config: endpoint and limits.

    Raises:
        ConfigError: ``api_key_env`` is not an environment variable name.
    """

    def __init__(self, config: TeacherConfig) -> None:
        from actial_ros.backends.vllm import VllmBackend, VllmOptions  # the openai client, only when asked

        self.config = config
        self._backend: VllmBackend = VllmBackend(
            options=VllmOptions(
                model=config.model,
                base_url=config.base_url,
                api_key_env=config.api_key_env,
                timeout_s=config.timeout_s,
                max_retries=config.max_retries,
                retry_on_timeout=True,  # a teacher waits for its (slow, long) replies
                max_in_flight=config.concurrency,
                system_prompt=config.system_prompt,
                max_tokens=config.max_tokens,
                temperature=config.temperature,
            )
        )

    def ask(self, request: TeacherRequest) -> TeacherResult:
        """Ask for one chain of thought and check it (see the module docstring). Never raises for
        transport or server errors: they give status ``error``."""
        question = request.question
        prompt = f'{question.text}\n\n{request.hint}'
        try:
            text = self._backend.ask_jpegs([request.image_1, request.image_2], prompt).raw_text
        except BackendError as error:  # the client's every transport or server failure, retried as it says
            return TeacherResult(TeacherStatus.ERROR, None, f'{type(error).__name__}: {error}')
        text = text.strip()
        if not matches_output_format(text):
            return TeacherResult(TeacherStatus.BAD_FORMAT, None, 'output is not <think>...</think><answer>...</answer>')
        letter = parse_answer(text, letters=question.letters).letter
        if letter != question.answer:
            return TeacherResult(
                TeacherStatus.WRONG_ANSWER, None, f'answered {letter!r}, ground truth {question.answer!r}'
            )
        return TeacherResult(TeacherStatus.ACCEPTED, text)

    def ask_many(self, requests: Sequence[TeacherRequest]) -> list[TeacherResult]:
        """:meth:`ask` for several requests, ``concurrency`` at a time; results in request order."""
        if not requests:
            return []
        if self.config.concurrency == 1 or len(requests) == 1:
            return [self.ask(request) for request in requests]
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(requests))) as pool:
            return list(pool.map(self.ask, requests))

    def close(self) -> None:
        """Close the HTTP client."""
        self._backend.close()

"""Which checkpoint ``--resume-from-checkpoint latest`` takes: the newest one the Trainer finished writing.

A run killed while saving leaves a ``checkpoint-N`` folder without ``trainer_state.json`` (the Trainer's last
write); resuming from it would fail, so it is passed over. The two-process kill-and-resume run is in
test_multiprocess.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from actial_ros.training.fine_tuning.runtime import last_complete_checkpoint, resume_argument

from actial_ros.errors import ConfigError


def _checkpoint(out: Path, step: int, *, complete: bool) -> Path:
    folder = out / f'checkpoint-{step}'
    folder.mkdir(parents=True)
    (folder / 'model.safetensors').write_bytes(b'weights')
    if complete:
        (folder / 'trainer_state.json').write_text('{}')
    return folder


def test_the_newest_complete_checkpoint_is_taken_and_a_half_written_one_passed_over(tmp_path: Path) -> None:
    out = tmp_path / 'run'
    assert last_complete_checkpoint(out) is None  # no output folder yet
    _checkpoint(out, 4, complete=True)
    newest = _checkpoint(out, 12, complete=True)  # 12 > 8 as numbers, not as text
    _checkpoint(out, 8, complete=True)
    _checkpoint(out, 16, complete=False)  # killed while saving
    (out / 'checkpoint-notes').mkdir()
    assert last_complete_checkpoint(out) == newest
    assert resume_argument('latest', out) == str(newest)
    assert resume_argument(True, out) == str(newest)


def test_resume_argument_starts_fresh_or_names_a_folder(tmp_path: Path) -> None:
    out = tmp_path / 'run'
    _checkpoint(out, 2, complete=False)
    assert resume_argument('latest', out) is None  # nothing complete: a first run starts from scratch
    for fresh in (None, False, '', 'false', 'none'):
        assert resume_argument(fresh, out) is None
    folder = _checkpoint(out, 6, complete=True)
    assert resume_argument(str(folder), out) == str(folder)
    with pytest.raises(ConfigError, match='no checkpoint directory'):
        resume_argument(str(out / 'checkpoint-99'), out)

"""Where the tests find real photographs: the bundled sample capture and the shared capture.

``SHARED_CAPTURE`` is ``../shared/data/captures/ethiopian_head`` next to the repository (66 photos of
512x512 with LLFF poses); tests that need it are marked with ``needs_shared_capture`` and skip with the
path in the reason when it is absent. Paths are resolved once here, so a symlinked or bind-mounted
``../shared`` gives the same strings everywhere (builder rows store the source path as given).
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ['REPO', 'SAMPLE_CAPTURE', 'SHARED_CAPTURE', 'needs_shared_capture']

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CAPTURE = REPO / 'data' / 'sample_capture'
SHARED_CAPTURE = (REPO.parent / 'shared' / 'data' / 'captures' / 'ethiopian_head').resolve()

needs_shared_capture = pytest.mark.skipif(
    not (SHARED_CAPTURE / 'poses_bounds.npy').is_file(),
    reason=f'shared capture not found at {SHARED_CAPTURE} (expected ../shared next to the repository)',
)

"""Headless Chromium for the tests that look at HTML the way a person would (Debian's ``chromium``;
scripts/install_test_browser.sh installs it in ``make test``; without it those tests skip, saying why)."""

from __future__ import annotations

import html.parser
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason='no chromium (make test installs it where it can)')


class Dom(html.parser.HTMLParser):
    """Text per element id / class, from Chromium's --dump-dom (the DOM as the browser built it)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str]] = []
        self.texts: dict[str, list[str]] = {}
        self.verdicts: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or '' for k, v in attrs}
        if tag == 'img' and attributes.get('src', '').startswith('data:image/jpeg;base64,'):
            self.images += 1
        if tag == 'tr' and 'data-verdict' in attributes:
            self.verdicts.append(attributes['data-verdict'])
        if tag not in ('img', 'br', 'meta'):
            self.stack.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ('img', 'br', 'meta') and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for attributes in self.stack:
            for key in (attributes.get('id'), attributes.get('class')):
                if key:
                    self.texts.setdefault(key, []).append(data)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', *args],
        capture_output=True,
        text=True,
        timeout=120,
    )

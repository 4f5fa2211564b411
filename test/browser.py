"""Headless Chromium for the tests that look at HTML the way a person would (Debian's ``chromium``;
scripts/install_test_browser.sh installs it in ``make test``; without it those tests skip, saying why)."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

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
        self.pair_images: dict[str, int] = {}  # embedded images per pair card ('pair-<id>')
        self.polygons: dict[str, list[str]] = {}  # SVG polygon points per class, in document order
        self.external: list[str] = []  # anything the page would fetch: a URL that is not data: or #fragment

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or '' for k, v in attrs}
        if tag == 'img' and attributes.get('src', '').startswith('data:image/jpeg;base64,'):
            self.images += 1
            card = next((a['id'] for a in reversed(self.stack) if a.get('id', '').startswith('pair-')), None)
            if card is not None:
                self.pair_images[card] = self.pair_images.get(card, 0) + 1
        if tag == 'polygon':
            self.polygons.setdefault(attributes.get('class', ''), []).append(attributes.get('points', ''))
        for key in ('src', 'href', 'xlink:href', 'srcset', 'data', 'poster', 'action'):
            value = attributes.get(key, '').strip()
            if value and not value.startswith(('data:', '#')):
                self.external.append(f'<{tag} {key}={value[:80]}>')
        if tag in ('script', 'link', 'iframe', 'object', 'embed') or 'url(' in attributes.get('style', ''):
            self.external.append(f'<{tag}>')
        if tag == 'tr' and 'data-verdict' in attributes:
            self.verdicts.append(attributes['data-verdict'])
        if tag not in ('img', 'br', 'meta'):
            self.stack.append({**attributes, '__tag': tag})

    def handle_endtag(self, tag: str) -> None:
        if tag not in ('img', 'br', 'meta') and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1].get('__tag') == 'style' and 'url(' in data:
            self.external.append('url() in <style>')
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


def report_dom(path: Path) -> Dom:
    """An HTML report as headless Chromium built it (``--dump-dom``), or as written where there is no Chromium
    (the ROS tests that write reports run without one too)."""
    parsed = Dom()
    if CHROMIUM is None:
        parsed.feed(path.read_text())
        return parsed
    dom = chromium('--dump-dom', path.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed.feed(dom.stdout)
    return parsed

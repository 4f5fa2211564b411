#!/usr/bin/env bash
# Headless Chromium for the tests that look at HTML the way a person would (test/test_demo_report.py):
# Debian's `chromium` package, installed with apt-get when it is missing and this user may install
# (about 30 s). Where it cannot be installed, say so; those tests then skip with that reason.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_test_browser: installing Debian's chromium (headless browser tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        && exit 0
fi
echo "install_test_browser: could not install chromium (not root, or no apt-get): browser tests will SKIP" >&2
exit 0

#!/usr/bin/env bash
# mypy (strict, typed as Python 3.11 and 3.10) and import-linter (the contracts in pyproject.toml) over the package
# as setup.py installs it.
#
# training/ installs as actial_ros.training (setup.py: package_dir), a layout neither tool sees in the source tree:
# grimp walks actial_ros/ only, so the training contracts would pass vacuously there, and mypy would type
# training/ as a package named `training`, so that every `from actial_ros.training ...` import (the benchmarks',
# the CLI's) would be Any to it. This stages a copy of the installed layout (actial_ros/ with training/ inside it,
# beside benchmarks/ and scripts/) in build/installed_layout and checks that, importing nothing from the editable
# install. Usage: scripts/lint_installed.sh [VENV]   (default .venv)
set -euo pipefail
venv=${1:-.venv}
repo=$(pwd)
case $venv in /*) ;; *) venv="$repo/$venv" ;; esac
# A fixed folder, so that mypy's cache (its paths) stays valid from one run to the next.
stage="$repo/build/installed_layout"
rm -rf "$stage"
mkdir -p "$stage"
cp -R actial_ros benchmarks scripts "$stage/"
rm -rf "$stage/actial_ros/training"  # a worktree's symlink, if any
cp -R training "$stage/actial_ros/training"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
# From the stage: both tools put the working directory first on sys.path.
cd "$stage"
for version in 3.11 3.10; do
    "$venv/bin/mypy" --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache/installed_$version" \
        --python-version "$version" actial_ros benchmarks scripts
done
PYTHONPATH="$stage" "$venv/bin/lint-imports" --no-cache "$repo/pyproject.toml"

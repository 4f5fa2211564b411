#!/usr/bin/env bash
# import-linter (the contracts in pyproject.toml) over the package as setup.py installs it.
#
# training/ installs as actial_ros.training (setup.py: package_dir), a layout grimp cannot see in the source tree
# (it walks actial_ros/ only), so the training contracts would pass vacuously there. This stages a copy of the
# installed layout (actial_ros/ with training/ inside it) and checks that, importing nothing from the editable
# install. Usage: scripts/lint_imports.sh [VENV]   (default .venv)
set -euo pipefail
venv=${1:-.venv}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R actial_ros "$stage/actial_ros"
rm -rf "$stage/actial_ros/training"  # a worktree's symlink, if any
cp -R training "$stage/actial_ros/training"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
repo=$(pwd)
case $venv in /*) ;; *) venv="$repo/$venv" ;; esac
# From the stage: import-linter puts the working directory first on sys.path.
cd "$stage"
PYTHONPATH="$stage" "$venv/bin/lint-imports" --no-cache "$repo/pyproject.toml"

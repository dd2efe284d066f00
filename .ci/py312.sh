#!/usr/bin/env bash
# medfuse's torch-free core on Python 3.12, the Python that 3D Slicer 5.10 and later bundle (ours is 3.11).
# In a temporary venv: medfuse (pip install --no-deps -e .) and its runtime dependencies from pyproject.toml
# except torch and MONAI (no torch wheel for 3.12 on disk; pip would pull a multi-GB CUDA build), then
# compileall of medfuse and slicer_extension, and .ci/smoke_py312.py (imports, --help, two fusions).
# Skips (exit 0, one line) when no Python 3.12 is here or MEDFUSE_SKIP_PY312=1. Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${MEDFUSE_SKIP_PY312:-0}" = 1 ]; then echo "py312 check: skipped (MEDFUSE_SKIP_PY312=1)"; exit 0; fi

# 1. a working Python 3.12 with venv: the newest pyenv 3.12.x, else python3.12 on PATH
py=""
for cand in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.* 2>/dev/null | sort -V -r | sed 's|$|/bin/python|') \
            "$(command -v python3.12 || true)"; do
    if [ -n "$cand" ] && "$cand" -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
        py="$cand"; break
    fi
done
if [ -z "$py" ]; then
    echo "py312 check: skipped: no Python 3.12 with venv here (pyenv versions or python3.12 on PATH)"; exit 0
fi

start=$SECONDS
tmp="$(mktemp -d "${TMPDIR:-/tmp}/medfuse-py312.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "py312 check: $("$py" -V) ($py)"

# 2. the venv; pip's output goes to a log shown only on failure (this machine's pip config is noisy)
"$py" -m venv "$tmp/venv"
vpy="$tmp/venv/bin/python"
mapfile -t deps < <("$vpy" - <<'EOF'
import re, tomllib
for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if re.match(r"[A-Za-z0-9_.-]+", dep).group().lower() not in {"torch", "monai"}:
        print(dep)
EOF
)
pip_install() {
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$vpy" -m pip install --no-compile "$@" >"$tmp/pip.log" 2>&1; then
        cat "$tmp/pip.log"; echo "py312 check: FAILED: pip install $*"; exit 1
    fi
}
pip_install "setuptools>=68" wheel "${deps[@]}"
pip_install --no-deps --no-build-isolation -e .
echo "py312 check: venv with ${deps[*]} ready in $((SECONDS - start)) s"

# 3. the grammar of every file (pyc files go to the temp folder, not the clone), then the smoke test
PYTHONPYCACHEPREFIX="$tmp/pycache" "$vpy" -m compileall -q medfuse slicer_extension \
    || { echo "py312 check: FAILED: compileall medfuse slicer_extension"; exit 1; }
PYTHONPYCACHEPREFIX="$tmp/pycache" "$vpy" .ci/smoke_py312.py
echo "py312 check: ok in $((SECONDS - start)) s"

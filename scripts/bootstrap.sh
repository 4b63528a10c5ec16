#!/usr/bin/env bash
# Creates .venv with Python 3.11+ when missing (or broken) and installs the project into it, only when
# pyproject.toml changed since the last successful install: the stamp holds the hash of what was installed,
# so a fresh clone (whose file times mean nothing) installs once and later runs skip straight to work.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
STAMP="$VENV/.journey-installed"
EXTRAS=${EXTRAS:-embedded,dev,bench}

is_python_311() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_python_311 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! is_python_311 "$VENV/bin/python"; then
    python=$(find_python) || {
        echo "error: Python 3.11 or newer is needed (tried \$PYTHON, python3.13, python3.12, python3.11, python3)" >&2
        exit 1
    }
    echo "==> creating $VENV with $python ($("$python" -V 2>&1))"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
fi

wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$wanted" ]; then
    echo "==> installing -e .[$EXTRAS] into $VENV (pyproject.toml changed since the last install)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -e ".[$EXTRAS]"
    echo "$wanted" >"$STAMP"
fi

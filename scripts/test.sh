#!/usr/bin/env bash
# The test run behind `make test` and CI: set up .venv, add the Debian tools some tests drive (chromium for
# browser tests, promtool for alert rules) when we can, then pytest. Extra arguments go to pytest.
# pytest's exit code 5 ("no tests ran") is turned into a failure: a suite that silently collects nothing
# must never pass CI.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

# Debian package for each tool that must exist at that path.
declare -A PACKAGES=([/usr/bin/chromium]=chromium [/usr/bin/promtool]=prometheus)

install_system_tools() {
    local path missing=()
    for path in "${!PACKAGES[@]}"; do
        [ -x "$path" ] || missing+=("${PACKAGES[$path]}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: missing ${missing[*]} (need root and apt-get to install); tests that use them will be skipped" >&2
        return 0
    fi
    echo "==> apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } </dev/null; then
        echo "warning: could not install ${missing[*]} with apt-get; tests that use them will be skipped" >&2
    fi
}

install_system_tools

status=0
.venv/bin/pytest -q "$@" </dev/null || status=$?
if [ "$status" -eq 5 ]; then
    echo "error: pytest ran no tests (exit 5); treating that as a failure" >&2
    exit 1
fi
exit "$status"

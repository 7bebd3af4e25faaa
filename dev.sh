#!/usr/bin/env bash
# One entry point for a fresh Linux machine with Python 3.11+:
#   ./dev.sh demo   fleet service + dashboard + virtual devices on http://127.0.0.1:8000
#   ./dev.sh test   lint, type checks and the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

ensure_venv() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "Python 3.11 or newer is needed (found $("$PYTHON" --version))" >&2; exit 2; }
    "$PYTHON" -m venv "$VENV"
  fi
  # Reinstall only when the dependency list changed since the last install.
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[$extras]"
    touch "$stamp"
  fi
}

ensure_browser() {
  # The dashboard tests drive Debian's Chromium; browser downloads by test tools are not used.
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian chromium for the browser tests..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found: browser tests will be skipped (apt-get install chromium)" >&2
  fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
  demo)
    ensure_venv device
    exec "$VENV/bin/fleet" demo "$@"
    ;;
  test)
    ensure_venv test
    ensure_browser
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    # Most tests wait on MicroPython VMs, brokers and the browser, so two cores keep four
    # workers busy. A file's tests stay on one worker: they share module fixtures.
    # FLEET_TEST_WORKERS=0 runs everything in this process. Tests marked `serial` run
    # afterwards on their own (exit 5: none of them was selected).
    status=0
    "$VENV/bin/pytest" -n "${FLEET_TEST_WORKERS:-4}" --dist loadfile -m "not serial" "$@" \
      || status=$?
    "$VENV/bin/pytest" -m serial "$@" || { code=$?; [ "$code" = 5 ] || status=$code; }
    exit "$status"
    ;;
  *)
    sed -n '2,4p' "$0" | sed 's/^# //'
    exit 2
    ;;
esac

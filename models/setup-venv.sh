#!/usr/bin/env bash
# Create models/.venv (if missing) and install models/requirements.txt into it.
# Idempotent: the install is skipped when .venv/.requirements.sha256 matches requirements.txt
# and pyproject.toml. Also installs this package in editable mode (console script
# `netwarden-models`; `python -m netwarden_models` works without it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-venv: creating $venv" >&2
    "$python" -m venv "$venv"
fi

want="$(cat "$req" "$here/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "setup-venv: installing requirements.txt (first run downloads torch, a few GB)" >&2
rm -f "$stamp"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$here"
echo "$want" > "$stamp"
echo "setup-venv: done" >&2

# Shared by scripts/app and scripts/test: create .venv and install rnnlab into it (idempotent).
# torch==2.13.0 is installed first: on this kind of machine it is a local CPU wheel, and it
# satisfies the worker extra's torch range, so pip does not fetch a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.rnnlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing rnnlab and its dependencies into .venv (first run takes a few minutes)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==${RNNLAB_TORCH_VERSION:-2.13.0}" || .venv/bin/pip install -q torch
  .venv/bin/pip install -q -e ".[all]"
  touch "$stamp"
fi

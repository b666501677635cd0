#!/usr/bin/env bash
# Start MNIST Lab: bash scripts/run-app.sh [streamlit options...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh

ensure_venv
install_requirements requirements.txt "$VENV/.requirements.sha256"
exec "$VENV/bin/streamlit" run app.py "$@"

#!/usr/bin/env bash
# Run the whole test suite (unit, AppTest, browser): bash scripts/test.sh [pytest options...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh

ensure_venv
install_requirements requirements-test.txt "$VENV/.requirements-test.sha256" requirements.txt
# Ray is optional for the app but tested: the Ray runner's tests start a real local cluster.
install_requirements requirements-ray.txt "$VENV/.requirements-ray.sha256"

export TF_CPP_MIN_LOG_LEVEL=2
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ ! -x "$chromium" && "${MNIST_LAB_REQUIRE_BROWSER:-}" != "1" ]]; then
    echo "note: $chromium not found, browser tests (tests/e2e) will skip; enable them with: sudo apt-get install chromium"
fi
exec "$VENV/bin/python" -m pytest "$@"

#!/usr/bin/env bash
# Sets up, builds and runs every Nightshift test (unit, integration, browser,
# packaging). Exits non-zero when anything fails.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${NIGHTSHIFT_BUILD_DIR:-$here/build/release}"

"$here/scripts/setup.sh" --test
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIGHTSHIFT_WERROR=ON >/dev/null
cmake --build "$build" --parallel "$(nproc)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 600

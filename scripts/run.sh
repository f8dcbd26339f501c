#!/usr/bin/env bash
# Sets up and builds Nightshift, then starts the host with the built-in
# agents on its default database. It prints the panel URL; Ctrl-C stops it.
# Extra arguments go to `nightshift serve` (e.g. --listen 127.0.0.1:0).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${NIGHTSHIFT_BUILD_DIR:-$here/build/release}"

"$here/scripts/setup.sh"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIGHTSHIFT_WERROR=ON >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target nightshift_all_runtime
exec "$build/bin/nightshift" serve "$@"

#!/usr/bin/env bash
# Installs what building and testing Nightshift needs on Debian 12, and
# nothing when it is all there already (then it is silent and quick).
#
#   scripts/setup.sh           build dependencies
#   scripts/setup.sh --test    also what the tests need (chromium, playwright-core, lintian, clang, ...)
set -euo pipefail

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlitecpp-dev libsqlite3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev
  libgtest-dev libgmock-dev
  libssl-dev ca-certificates
  libpq-dev
  libhowardhinnant-date-dev tzdata
  # Runs that ask for a sandbox (and their tests) run under bubblewrap.
  bubblewrap
)
if [ "$want_test" = 1 ]; then
  packages+=(chromium lintian dpkg-dev file sqlite3 procps curl jq)
  # The PostgreSQL store's tests start their own server (initdb, pg_ctl).
  packages+=(postgresql)
  # The fuzzers (scripts/fuzz.sh): clang with libFuzzer and the sanitizers.
  packages+=(clang libclang-rt-14-dev)
  # Node.js may come from Debian or elsewhere; only its absence matters.
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { $sudo apt-get update -qq && \
         $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: installing packages failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

if [ "$want_test" = 1 ]; then
  browser_dir="$here/tests/browser"
  if [ -f "$browser_dir/package.json" ] && [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
    echo "setup: installing the browser tests' npm packages"
    (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi

#!/usr/bin/env bash
# Builds the .deb and the .tar.gz, unpacks each, runs an agent through the
# API of each unpacked host, builds the SDK's example agent out of tree
# against the unpacked SDK and runs it, and checks the .deb's declared
# dependencies against what its binaries link.
#
# usage: test_packages.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build_dir=$1
source_dir=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/nightshift-packaging.XXXXXX")
host_pid=""
cleanup() {
  if [ -n "$host_pid" ]; then kill "$host_pid" 2>/dev/null || true; wait "$host_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cpack: .deb and .tar.gz"
(cd "$build_dir" && cpack --config CPackConfig.cmake -B "$work/out" >"$work/cpack.log" 2>&1) \
  || { cat "$work/cpack.log"; fail "cpack failed"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build_dir/CPackConfig.cmake")
deb="$work/out/nightshift_${version}_amd64.deb"
tgz="$work/out/nightshift-${version}-Linux-x86_64.tar.gz"
[ -f "$deb" ] || fail "no $deb"
[ -f "$tgz" ] || fail "no $tgz"

step "unpack"
mkdir -p "$work/tgz" "$work/deb"
tar -xzf "$tgz" -C "$work/tgz"
dpkg-deb -x "$deb" "$work/deb"
tgz_root="$work/tgz/nightshift-${version}-Linux-x86_64"
deb_root="$work/deb/usr"

for root in "$tgz_root" "$deb_root"; do
  for f in bin/nightshift include/nightshift/agent.h include/nightshift/agent.hpp \
           lib/cmake/NightshiftSDK/NightshiftSDKConfig.cmake \
           lib/cmake/NightshiftSDK/NightshiftSDKConfigVersion.cmake \
           lib/nightshift/agents/echo/agent.json lib/nightshift/agents/echo/libecho.so \
           lib/nightshift/agents/sleep/libsleep.so lib/nightshift/agents/shell/libshell.so \
           lib/nightshift/agents/repo-scan/librepo-scan.so lib/nightshift/agents/llm/libllm.so \
           lib/nightshift/agents/llm/agent.json lib/nightshift/nightshift-worker \
           lib/nightshift/nightshift-store-postgresql.so \
           lib/systemd/user/nightshift.service share/man/man1/nightshift.1.gz; do
    [ -e "$root/$f" ] || fail "$root lacks $f"
  done
done

# Starts an unpacked host; sets base_url and token. $1 = the host's root.
start_host() {
  local root=$1 data="$work/data-$RANDOM"
  mkdir -p "$data" "$work/ws"
  token="packaging-test-token"
  XDG_DATA_HOME="$work/xdg-data" XDG_CONFIG_HOME="$work/xdg-config" \
    "$root/bin/nightshift" serve --listen 127.0.0.1:0 --data-dir "$data" \
    --workspace "$work/ws" --token "$token" >"$work/host.out" 2>"$work/host.err" &
  host_pid=$!
  for _ in $(seq 1 200); do
    base_url=$(sed -n 's/^listening on \(http:\/\/[^ ]*\)$/\1/p' "$work/host.out")
    [ -n "$base_url" ] && return 0
    kill -0 "$host_pid" 2>/dev/null || { cat "$work/host.err"; fail "host exited"; }
    sleep 0.05
  done
  cat "$work/host.err"; fail "host did not print its listening line"
}

stop_host() {
  kill -TERM "$host_pid"
  wait "$host_pid" || fail "host did not exit 0 on SIGTERM"
  host_pid=""
}

api() {  # api METHOD PATH [BODY]
  local args=(-sS -f -X "$1" -H "Authorization: Bearer $token" "$base_url$2")
  [ $# -ge 3 ] && args+=(-H "Content-Type: application/json" --data "$3")
  curl "${args[@]}"
}

# Starts an agent and waits until its run completed; prints the run.
run_to_completion() {
  local agent=$1 id status run
  id=$(api POST /background-agents/start "{\"agentId\": \"$agent\", \"task\": \"from the package\"}" | jq -r .instanceId)
  [ -n "$id" ] && [ "$id" != null ] || fail "start of $agent gave no instanceId"
  for _ in $(seq 1 200); do
    run=$(api GET "/background-agents/$id")
    status=$(jq -r .status <<<"$run")
    case "$status" in
      completed) echo "$run"; return 0 ;;
      failed|cancelled) fail "$agent ended $status: $(jq -r .error <<<"$run")" ;;
    esac
    sleep 0.05
  done
  fail "$agent did not finish"
}

for root in "$tgz_root" "$deb_root"; do
  step "host from $(basename "$(dirname "$root")")/$(basename "$root"): run installed:echo"
  start_host "$root"
  run_to_completion installed:echo >/dev/null
  # On SQLite the PostgreSQL store's module, and libpq with it, stay unloaded.
  if grep -E 'libpq|nightshift-store-postgresql' "/proc/$host_pid/maps" >/dev/null; then
    fail "a host on SQLite mapped libpq or the PostgreSQL module"
  fi
  stop_host
  step "host from $(basename "$(dirname "$root")")/$(basename "$root"): its PostgreSQL module loads"
  # Nothing listens on port 1: the error must come from libpq, loaded.
  if XDG_DATA_HOME="$work/xdg-data" XDG_CONFIG_HOME="$work/xdg-config" \
     "$root/bin/nightshift" serve --listen 127.0.0.1:0 --data-dir "$work/data-pg" \
     --token "$token" --store "postgresql://nightshift@127.0.0.1:1/nightshift" \
     >"$work/host.out" 2>"$work/host.err"; then
    fail "a host with an unreachable PostgreSQL store started"
  fi
  grep -q "cannot connect to PostgreSQL" "$work/host.err" \
    || { cat "$work/host.err"; fail "the PostgreSQL store did not get as far as connecting"; }
done

step "build plugin-sdk/examples/hello against the unpacked SDK"
cmake -S "$source_dir/plugin-sdk/examples/hello" -B "$work/hello-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tgz_root" -DCMAKE_BUILD_TYPE=Release >"$work/hello.log" 2>&1 \
  || { cat "$work/hello.log"; fail "configuring hello failed"; }
cmake --build "$work/hello-build" >>"$work/hello.log" 2>&1 \
  || { cat "$work/hello.log"; fail "building hello failed"; }
hello_dir=$(dirname "$(find "$work/hello-build" -name libhello.so -print -quit)")
[ -f "$hello_dir/agent.json" ] || fail "hello's build has no agent.json beside libhello.so"

step "drop hello into the user agents directory, rescan, run it"
start_host "$tgz_root"
mkdir -p "$work/xdg-data/nightshift/agents"
cp -r "$hello_dir" "$work/xdg-data/nightshift/agents/hello"
api POST /agents/rescan | jq -e '.agents[] | select(.id == "installed:hello" and .available)' >/dev/null \
  || fail "installed:hello not available after rescan"
run_to_completion installed:hello >/dev/null
stop_host

step "the .deb's Depends match what its binaries link"
declared=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | sort -u)
# What each binary links itself (its NEEDED entries), resolved to files by
# ldd; the libraries those pull in are their own packages' dependencies.
linked=$(
  for f in "$deb_root/bin/nightshift" "$deb_root/lib/nightshift/nightshift-worker" \
           "$deb_root/lib/nightshift/nightshift-store-postgresql.so" \
           "$deb_root"/lib/nightshift/agents/*/*.so; do
    needed=$(objdump -p "$f" | awk '$1 == "NEEDED" {print $2}')
    ldd "$f" | awk '/=> \// {print $1, $3}' | while read -r soname path; do
      if grep -qxF "$soname" <<<"$needed"; then echo "$path"; fi
    done
  done | sort -u | while read -r lib; do
    real=$(readlink -f "$lib")
    for candidate in "$lib" "$real" "${lib#/usr}" "/usr$lib" "${real#/usr}" "/usr$real"; do
      pkg=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && { echo "$pkg"; break; }
    done
  done | sort -u)
echo "declared: $(echo $declared)"
echo "linked:   $(echo $linked)"
# A package counts under its own name and the virtual names it provides
# (Debian's shlibs may name libspdlog1.10-fmt9, provided by libspdlog1.10).
names_of() {
  echo "$1"
  dpkg-query -W -f='${Provides}' "$1" 2>/dev/null | tr ',' '\n' | sed 's/(.*)//; s/ //g' | grep -v '^$' || true
}
linked_names=$(for pkg in $linked; do names_of "$pkg"; done | sort -u)
for pkg in $linked; do
  names_of "$pkg" | grep -qxFf - <(echo "$declared") \
    || fail "the binaries link a library of $pkg, which Depends does not name"
done
for pkg in $declared; do
  grep -qx "$pkg" <<<"$linked_names" || fail "Depends names $pkg, which no binary links"
done

step "the .deb recommends bubblewrap (the sandbox of process isolation)"
dpkg-deb -f "$deb" Recommends | grep -qw bubblewrap || fail "the .deb does not recommend bubblewrap"

step "lintian"
if lintian --fail-on error --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1; then
  warnings=$(grep -c '^W:' "$work/lintian.log" || true)
  echo "lintian: no errors ($warnings warnings)"
else
  cat "$work/lintian.log"; fail "lintian reports errors"
fi

echo "packaging: all checks passed"

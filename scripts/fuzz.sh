#!/usr/bin/env bash
# Builds the fuzzers of tests/fuzz with clang (libFuzzer, AddressSanitizer,
# UndefinedBehaviorSanitizer) in a build directory of their own, then runs
# each for SECONDS (default 30) from its seed corpus in tests/fuzz/corpus.
# Prints the runs each fuzzer made; exits non-zero when one crashes, leaks,
# hangs (10 s on one input) or goes over 2 GB, naming the input it saved.
#
#   scripts/fuzz.sh [SECONDS]
#
# NIGHTSHIFT_FUZZ_BUILD_DIR: the build directory (default build/fuzz).
# NIGHTSHIFT_FUZZ_ONLY: run only these fuzzers (e.g. "remix manifest").
# NIGHTSHIFT_FUZZ_JOBS: how many fuzzers run at once (default: the cores).
# NIGHTSHIFT_FUZZ_SEED: libFuzzer's random seed (default: a new one each run).
#   The ctest test sets it, so that CI replays the same inputs as the run
#   that landed a change instead of drawing new ones on every submission;
#   run this script by hand (no seed) to search further.
set -euo pipefail

seconds=${1:-30}
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
jobs=${NIGHTSHIFT_FUZZ_JOBS:-$(nproc)}
case "$jobs" in
  '' | *[!0-9]* | 0) echo "fuzz: NIGHTSHIFT_FUZZ_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${NIGHTSHIFT_FUZZ_BUILD_DIR:-$here/build/fuzz}
fuzzers=${NIGHTSHIFT_FUZZ_ONLY:-remix manifest params http sse answer wire api protocol}

for tool in clang clang++ cmake; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fuzz: $tool not found; install clang and libclang-rt-14-dev (scripts/setup.sh --test)" >&2
    exit 1
  fi
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  # -O1 with line tables only, as OSS-Fuzz builds fuzzers: stack traces keep
  # their lines, and the build takes a fifth less than -O2 -g.
  configure=(-S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
             "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG"
             "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG"
             -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
             -DNIGHTSHIFT_FUZZ=ON -DNIGHTSHIFT_FUZZ_IN_CTEST=OFF -DNIGHTSHIFT_BUILD_BENCHMARKS=OFF)
  command -v ninja >/dev/null 2>&1 && configure+=(-G Ninja)
  if command -v ccache >/dev/null 2>&1; then
    configure+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  echo "fuzz: configuring $build"
  log=$(mktemp)
  if ! cmake "${configure[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "fuzz: configuring $build failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

echo "fuzz: building the fuzzers in $build"
targets=()
for name in $fuzzers; do targets+=("fuzz_$name"); done
build_started=$SECONDS
cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" >"$build/fuzz-build.log" 2>&1 || {
  tail -n 50 "$build/fuzz-build.log" >&2
  echo "fuzz: building the fuzzers failed (log: $build/fuzz-build.log)" >&2
  exit 1
}
echo "fuzz: built in $((SECONDS - build_started)) s"

# The longest input each fuzzer makes: enough to reach its bounds (front
# matter 64 KiB, nesting, header limits) without slowing every run.
max_len() {
  case "$1" in
    remix) echo 70000 ;;
    manifest) echo 8192 ;;
    params) echo 8192 ;;
    http | api) echo 20000 ;;
    *) echo 4096 ;;
  esac
}

# One fuzzer, its output in its log; its exit status is its own.
fuzz_one() {
  local name=$1
  local seeds="$here/tests/fuzz/corpus/$name"
  local work="$build/fuzz-corpus/$name"       # what the fuzzer adds; the seeds stay as committed
  local artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$work" "$artifacts"
  local seed_flag=()
  [ -n "${NIGHTSHIFT_FUZZ_SEED:-}" ] && seed_flag=(-seed="$NIGHTSHIFT_FUZZ_SEED")
  "$build/bin/fuzz_$name" "${seed_flag[@]}" -max_total_time="$seconds" -max_len="$(max_len "$name")" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "$seeds" >"$build/fuzz-$name.log" 2>&1
}

# Up to $jobs fuzzers at once (each uses one core); results in their order.
pids=()
names=()
for name in $fuzzers; do
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    # Wait for the oldest before starting another.
    wait "${pids[0]}" && echo 0 >"$build/fuzz-${names[0]}.status" || echo $? >"$build/fuzz-${names[0]}.status"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
  rm -f "$build/fuzz-$name.status"
  fuzz_one "$name" &
  pids+=("$!")
  names+=("$name")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" && echo 0 >"$build/fuzz-${names[$i]}.status" || echo $? >"$build/fuzz-${names[$i]}.status"
done

failed=0
for name in $fuzzers; do
  log="$build/fuzz-$name.log"
  status=$(cat "$build/fuzz-$name.status")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $name: ${execs:-?} runs in ${seconds} s, no crash"
  else
    failed=1
    echo "fuzz: $name: FAILED (exit $status) after ${execs:-?} runs; log $log" >&2
    grep -E "ERROR|SUMMARY|fuzz check failed|Test unit written|deadly signal|timeout" "$log" | head -n 20 >&2 || true
  fi
done
exit "$failed"

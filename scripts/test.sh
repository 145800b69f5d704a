#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine and passes the tests:
#   1. install the packages (scripts/setup.sh),
#   2. build and run the whole suite (unit, property, crash and simulation
#      tests, plus a quick smoke run of every benchmark),
#   3. install the library and build a tiny find_package(NodeNomad) consumer,
#   4. build and run the suite again under AddressSanitizer + UBSan,
#   5. fuzz every decoder of disk and network bytes for a bounded time.
# CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# Clean clones live in fresh directories: let ccache match their sources by
# path relative to the clone, so CI reuses what earlier runs compiled.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
jobs=$(nproc)
stage() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

stage "setup"
bash scripts/setup.sh

stage "build (RelWithDebInfo)"
bash scripts/build.sh build/release

stage "tests"
ctest --test-dir build/release --output-on-failure -j"$jobs" --timeout 900

stage "install + find_package(NodeNomad) consumer"
rm -rf build/install build/consumer
cmake --install build/release --prefix "$PWD/build/install" >/dev/null
cmake -S tests/install_consumer -B build/consumer -G Ninja \
  -DCMAKE_PREFIX_PATH="$PWD/build/install" >/dev/null
cmake --build build/consumer
rm -rf build/consumer-node-data
./build/consumer/nodenomad_consumer build/consumer-node-data

stage "build (AddressSanitizer + UndefinedBehaviorSanitizer)"
bash scripts/build.sh build/asan -DNODENOMAD_SANITIZE=address,undefined \
  -DNODENOMAD_BUILD_BENCHMARKS=OFF -DNODENOMAD_BUILD_EXAMPLES=OFF

stage "tests under sanitizers"
# The seeded cluster simulations run a shorter list of seeds under the
# sanitizers (about 5x slower); the release run above covers the full list.
NODENOMAD_SIM_SEEDS=40 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" --timeout 1800

stage "fuzzing every decoder (libFuzzer, ${NODENOMAD_FUZZ_SECONDS:-20}s each)"
bash scripts/fuzz.sh "${NODENOMAD_FUZZ_SECONDS:-20}"

stage "all green"

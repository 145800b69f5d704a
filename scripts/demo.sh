#!/usr/bin/env bash
# The main job: sets everything up on a fresh Debian 12 machine, builds, and
# runs NodeNomad's quickstart (a durable storage engine and the hash ring).
# Data goes to build/demo-data; run it twice to see the data survive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
NODENOMAD_TARGETS=quickstart bash scripts/build.sh build/release
mkdir -p build/demo-data
exec ./build/release/examples/quickstart build/demo-data/quickstart

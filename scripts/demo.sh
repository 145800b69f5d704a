#!/usr/bin/env bash
# The main job: sets everything up on a fresh Debian 12 machine, builds the
# server and the client, and starts a local 3-node cluster (three
# nodenomad-node processes on loopback, data under cluster-data/). It prints
# the endpoints and commands to try; Ctrl-C stops every node gracefully.
# Arguments go to scripts/cluster.sh (--nodes N, --base-port P, --data DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
NODENOMAD_TARGETS="nodenomad-node nodenomadctl" bash scripts/build.sh build/release
exec bash scripts/cluster.sh --build build/release "$@"

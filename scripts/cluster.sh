#!/usr/bin/env bash
# Starts a local NodeNomad cluster: N processes of nodenomad-node on
# loopback (default 3, ports 3000..), data under cluster-data/ (kept across
# runs: stop it and start it again, and the data is still there). Prints the
# endpoints and a few commands to try; Ctrl-C stops every node gracefully.
#
#   scripts/cluster.sh [--nodes N] [--base-port P] [--data DIR] [--build DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=3
base_port=3000
data=cluster-data
build=build/release
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument '$1' (accepted: --nodes N, --base-port P, --data DIR, --build DIR)" >&2; exit 2 ;;
  esac
done
server=$build/examples/nodenomad-node
ctl=$build/examples/nodenomadctl
[[ -x $server && -x $ctl ]] || { echo "cluster.sh: $server or $ctl is not built" >&2; exit 1; }

members=""
for i in $(seq 1 "$nodes"); do
  members+="${members:+,}node-$i@127.0.0.1:$((base_port + i - 1))"
done
mkdir -p "$data"
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "stopping ${#pids[@]} nodes..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; data kept in $data/"
  exit 0
}
trap stop_all INT TERM EXIT
for i in $(seq 1 "$nodes"); do
  NODE_ID=node-$i NODE_PORT=$((base_port + i - 1)) CLUSTER_NODES=$members \
    DATA_DIR=$data/node-$i LOG_LEVEL=${LOG_LEVEL:-warn} \
    "$server" 2>>"$data/node-$i.log" &
  pids+=($!)
done

# Ready when every node answers /ready (the metadata group has caught up)
# and a write goes through.
deadline=$((SECONDS + 60))
until "$ctl" --endpoint "127.0.0.1:$base_port" put nodenomad:started "$(date -u +%FT%TZ)" >/dev/null 2>&1; do
  if (( SECONDS > deadline )); then echo "cluster.sh: the cluster did not accept a write within 60 s; see $data/*.log" >&2; exit 1; fi
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "cluster.sh: a node exited; see $data/*.log" >&2; exit 1; }; done
  sleep 0.2
done

echo "NodeNomad: $nodes nodes on loopback, data in $data/, logs in $data/node-*.log"
for i in $(seq 1 "$nodes"); do echo "  node-$i  http://127.0.0.1:$((base_port + i - 1))"; done
cat <<TRY

Try (any node takes any request):
  curl -X PUT --data-binary 'hello' http://127.0.0.1:$base_port/v1/kv/greeting
  curl -i http://127.0.0.1:$((base_port + 1))/v1/kv/greeting
  curl -X PUT --data-binary 'v2' 'http://127.0.0.1:$base_port/v1/kv/greeting?if_version=1'
  curl -X PUT --data-binary 'bye' 'http://127.0.0.1:$base_port/v1/kv/session?ttl=30'
  curl http://127.0.0.1:$base_port/v1/cluster
  curl http://127.0.0.1:$base_port/metrics
  $ctl --endpoint 127.0.0.1:$base_port status
  $ctl --endpoint 127.0.0.1:$((base_port + 2)) get greeting

Ctrl-C stops every node gracefully.
TRY
wait -n "${pids[@]}" || true
echo "cluster.sh: a node exited; see $data/*.log" >&2

#!/usr/bin/env bash
# Adds a 4th node to the local cluster that scripts/cluster.sh runs, and
# watches the rebalance move shards onto it under a steady write load:
#
#   1. a write load starts against the cluster (nodenomadctl load, 200 PUTs/s);
#   2. node-4 starts on 127.0.0.1:3003 with JOIN=127.0.0.1:3000, data in
#      cluster-data/node-4, log in cluster-data/node-4.log; its join makes
#      the metadata leader plan a rebalance;
#   3. the moves are shown live (nodenomadctl migrations --watch) until all end;
#   4. the load stops, and a summary says how the operations ended and how
#      the writes went during the rebalance (ok / not applied / unknown /
#      errors, latency);
#   5. node-4 keeps running: Ctrl-C stops it gracefully (Ctrl-C in the
#      cluster.sh terminal stops the other three).
#
#   scripts/add-node.sh [--nodes 3] [--base-port 3000] [--data cluster-data]
#                       [--build build/release] [--rate 200]
#
# --nodes, --base-port and --data are those given to cluster.sh; the new node
# is node-<nodes+1> on port base-port+nodes. Run again after a stop, the node
# restarts from its data (no join): a `nodenomadctl rebalance` then moves
# whatever the placement still needs, usually nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=3
base_port=3000
data=cluster-data
build=build/release
rate=200
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "add-node.sh: unknown argument '$1' (accepted: --nodes N, --base-port P, --data DIR, --build DIR, --rate N)" >&2; exit 2 ;;
  esac
done
server=$build/examples/nodenomad-node
ctl=$build/examples/nodenomadctl
[[ -x $server && -x $ctl ]] || { echo "add-node.sh: $server or $ctl is not built (scripts/demo.sh builds them)" >&2; exit 1; }

id=node-$((nodes + 1))
port=$((base_port + nodes))
join=127.0.0.1:$base_port
if ! "$ctl" --endpoint "$join" status >/dev/null 2>&1; then
  echo "add-node.sh: no cluster answers on $join; start it first: scripts/cluster.sh --nodes $nodes --base-port $base_port --data $data" >&2
  exit 1
fi
if "$ctl" --endpoint "127.0.0.1:$port" --timeout-ms 1000 status >/dev/null 2>&1; then
  echo "add-node.sh: something already answers on 127.0.0.1:$port (is $id running?)" >&2
  exit 1
fi
restarting=false
[[ -f $data/$id/NODENOMAD ]] && restarting=true

work=$(mktemp -d)
load_pid=""
node_pid=""
stop_load() {
  [[ -n $load_pid ]] || return 0
  kill -TERM "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  load_pid=""
}
stop_node() {
  [[ -n $node_pid ]] || return 0
  echo; echo "stopping $id..."
  kill -TERM "$node_pid" 2>/dev/null || true
  wait "$node_pid" 2>/dev/null || true
  node_pid=""
  echo "$id stopped; its data stays in $data/$id/ (run this script again to restart it)"
}
cleanup() {
  trap - INT TERM EXIT
  stop_load
  stop_node
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The load and the node get sessions of their own (setsid), so that the
# Ctrl-C that stops watching reaches neither; this script stops them.
echo "starting a write load: $rate PUTs/s through $join (nodenomadctl load)"
setsid "$ctl" --endpoint "$join" load --rate "$rate" --connections 2 --keys 1000 \
  --key-prefix add-node-load- >"$work/load.out" 2>"$work/load.err" &
load_pid=$!

if $restarting; then
  echo "starting $id on 127.0.0.1:$port from its data in $data/$id (log $data/$id.log)"
else
  echo "starting $id on 127.0.0.1:$port, joining through $join (data $data/$id, log $data/$id.log)"
fi
NODE_ID=$id NODE_PORT=$port BIND_HOST=127.0.0.1 JOIN=$join DATA_DIR=$data/$id \
  LOG_LEVEL=${LOG_LEVEL:-warn} setsid "$server" 2>>"$data/$id.log" &
node_pid=$!

# It serves once it knows the cluster: the join went through.
deadline=$((SECONDS + 60))
until "$ctl" --endpoint "127.0.0.1:$port" --timeout-ms 1000 status >/dev/null 2>&1; do
  kill -0 "$node_pid" 2>/dev/null || { node_pid=""; echo "add-node.sh: $id exited; see $data/$id.log" >&2; tail -3 "$data/$id.log" >&2; exit 1; }
  (( SECONDS < deadline )) || { echo "add-node.sh: $id did not join within 60 s; see $data/$id.log" >&2; exit 1; }
  sleep 0.2
done
echo "$id is a member; following the rebalance (Ctrl-C stops following, not the moves)"
echo

# Ctrl-C now stops the watch only; the summary and the node come after.
trap 'true' INT
watch_exit=0
if $restarting; then
  "$ctl" --endpoint "$join" rebalance --interval 500ms || watch_exit=$?
else
  "$ctl" --endpoint "$join" migrations --watch --interval 500ms || watch_exit=$?
fi
stop_load
trap 'exit 130' INT

echo
echo "==== summary ===="
# The operations onto the new node, by their final stage (the table's TO and STAGE columns).
"$ctl" --endpoint "$join" migrations 2>/dev/null | awk -v id="$id" '
  NR > 1 && $4 == id { n[$5]++; total++ }
  END {
    running = total - n["done"] - n["failed"] - n["cancelled"]
    printf "moves onto %s: %d done, %d failed, %d cancelled, %d still running\n",
           id, n["done"], n["failed"], n["cancelled"], running
  }' || true
hosted=$("$ctl" --endpoint "$join" status 2>/dev/null | awk -v id="$id" '$1 == id { print $4 }' || true)
echo "$id now hosts ${hosted:-?} shard replicas"
echo "writes during the rebalance:"
sed 's/^/  /' "$work/load.out"
grep -v '^nodenomadctl: load:' "$work/load.err" | sed 's/^/  /' || true
if (( watch_exit != 0 && watch_exit != 130 )); then
  echo "(the rebalance did not end cleanly: nodenomadctl exited $watch_exit; see the lines above)"
fi

echo
echo "$id keeps running on 127.0.0.1:$port (pid $node_pid, log $data/$id.log)."
echo "Ctrl-C here stops it; Ctrl-C in the cluster.sh terminal stops the other $nodes."
echo "Try: $ctl --endpoint 127.0.0.1:$port status"
trap 'exit 0' INT TERM
wait "$node_pid" || true
node_pid=""
echo "add-node.sh: $id exited; see $data/$id.log" >&2
exit 1

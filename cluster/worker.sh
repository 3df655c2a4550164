#!/usr/bin/env bash
# Add this machine (or a second node on the same machine) to a running orch/Ray head, or stop
# the node this script started. Only the processes of that node are stopped: unlike
# `ray stop`, other Ray clusters on the machine are left alone.
#
#   cluster/worker.sh start HEAD_GCS_ADDRESS TOKEN_FILE [extra `ray start` flags]
#   cluster/worker.sh stop  [NAME]
#
# HEAD_GCS_ADDRESS  what `orch cluster up` prints (host:port of the head's GCS)
# TOKEN_FILE        a copy of the head's Ray auth token (orch home/cluster/auth_token on the
#                   head); keep it readable by its owner only (chmod 600)
# extra flags       resources of this node, e.g. --num-cpus=16 --num-gpus=4
# NAME              ORCH_WORKER_NAME (default: worker); one name per node on a machine
#
# The node needs the same Python environment as the head (this project and its pinned
# dependencies installed, e.g. `make install`), and must reach the head's GCS port, and the
# head this node's ports. RAY is taken from $RAY, else from the virtualenv beside this file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
RAY="${RAY:-$here/../.venv/bin/ray}"
name="${ORCH_WORKER_NAME:-worker}"
temp_dir="${TMPDIR:-/tmp}/orch-$(id -u)-$name"

case "${1:-}" in
  start)
    [ $# -ge 3 ] || { sed -n '2,20p' "$0"; exit 2; }
    head="$2"; token="$3"; shift 3
    [ -r "$token" ] || { echo "error: token file $token is not readable" >&2; exit 2; }
    chmod 600 "$token"
    RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH="$token" RAY_USAGE_STATS_ENABLED=0 \
    RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=0 RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP=0 \
      "$RAY" start --address="$head" --temp-dir="$temp_dir" --disable-usage-stats "$@"
    echo "node '$name' joined $head; stop it with: $0 stop $name"
    ;;
  stop)
    name="${2:-$name}"; temp_dir="${TMPDIR:-/tmp}/orch-$(id -u)-$name"
    pids="$(pgrep -f -- "$temp_dir" || true)"
    [ -n "$pids" ] || { echo "no node '$name' is running here"; exit 0; }
    kids="$(for p in $pids; do pgrep -P "$p" || true; done)"
    kill $pids $kids 2>/dev/null || true
    for _ in $(seq 1 20); do pgrep -f -- "$temp_dir" >/dev/null || break; sleep 0.5; done
    pkill -9 -f -- "$temp_dir" 2>/dev/null || true
    rm -rf "$temp_dir"
    echo "stopped node '$name'"
    ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac

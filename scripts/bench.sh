#!/usr/bin/env bash
# Benchmarks Hearth on this machine and regenerates docs/benchmarks.md.
#
#   scripts/bench.sh              # embedded mode (SQLite), about 4 minutes on 2 cores
#   scripts/bench.sh --cluster    # also cluster mode (needs MariaDB on :3306 and Redis on :6379;
#                                 # scripts/services.sh starts them)
#   scripts/bench.sh --render F   # only regenerate docs/benchmarks.md from saved JSON lines F
#
# Sizes come from environment variables (defaults in brackets) so a bigger machine can run
# the full targets: FANOUT_SUBSCRIBERS [1000], FANOUT_STEADY_RATE [50], FANOUT_SECONDS [15],
# FANOUT_BURST_SENDERS [4], FANOUT_BURST_WINDOW [32], DM_PAIRS [20], DM_SECONDS [10], CONNECTIONS [15000, capped by the
# fd limit], HISTORY_MESSAGES [1000000], HISTORY_PAGES [2000], LOGIN_SIGNUPS [40],
# LOGIN_LOGINS [80], HISTORY_PAGES_CLUSTER [200] (cluster pages are slow, see the notes). Every server it starts listens on loopback only and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/hearth-target}
CLUSTER=false
RENDER_ONLY=
while [[ $# -gt 0 ]]; do
  case $1 in
    --cluster) CLUSTER=true ;;
    --render) RENDER_ONLY=$(realpath "$2"); shift ;;
    *) echo "usage: $0 [--cluster] [--render RESULTS.jsonl]" >&2; exit 2 ;;
  esac
  shift
done

FANOUT_SUBSCRIBERS=${FANOUT_SUBSCRIBERS:-1000}
FANOUT_STEADY_RATE=${FANOUT_STEADY_RATE:-50}
FANOUT_SECONDS=${FANOUT_SECONDS:-15}
FANOUT_BURST_SENDERS=${FANOUT_BURST_SENDERS:-4}
# Frames each burst sender keeps unechoed: with 8, the four senders were the limit (759k
# deliveries/s at 1.13 µs), not the server.
FANOUT_BURST_WINDOW=${FANOUT_BURST_WINDOW:-32}
DM_PAIRS=${DM_PAIRS:-20}
DM_SECONDS=${DM_SECONDS:-10}
HISTORY_MESSAGES=${HISTORY_MESSAGES:-1000000}
HISTORY_PAGES=${HISTORY_PAGES:-2000}
HISTORY_PAGES_CLUSTER=${HISTORY_PAGES_CLUSTER:-200}
LOGIN_SIGNUPS=${LOGIN_SIGNUPS:-40}
LOGIN_LOGINS=${LOGIN_LOGINS:-80}

if [[ -z $RENDER_ONLY ]]; then
echo "building (release) into $TARGET" >&2
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p hearth -p hearth-bench)
fi
HEARTH=$TARGET/release/hearth
BENCH=$TARGET/release/hearth-bench

# Both the server and the load generator need a descriptor per socket.
ulimit -n "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -n)
# Leave room for the server's own files and the bench's accounts: each side holds one fd per socket.
CONNECTIONS=${CONNECTIONS:-$(( FD_LIMIT - 1000 < 15000 ? FD_LIMIT - 1000 : 15000 ))}

RESULTS=${RENDER_ONLY:-$(mktemp)}
WORK=$(mktemp -d)
SERVER_PID=
DB_NAME=
REDIS_PREFIX=

EXTRA_PIDS=()
stop_server() {
  for pid in "${EXTRA_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  EXTRA_PIDS=()
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
  if [[ -n $DB_NAME ]]; then
    mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS \`$DB_NAME\`" || true
    DB_NAME=
  fi
  if [[ -n $REDIS_PREFIX ]]; then
    redis-cli --scan --pattern "${REDIS_PREFIX}*" | xargs -r -n 500 redis-cli del >/dev/null || true
    REDIS_PREFIX=
  fi
}
cleanup() {
  stop_server
  rm -rf "$WORK"
  [[ -n $RENDER_ONLY ]] || rm -f "$RESULTS"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server MODE: starts a fresh server, sets SERVER_PID and URL.
start_server() {
  local mode=$1 port data
  port=$(free_port)
  data=$(mktemp -d -p "$WORK")
  local args=(serve --listen "127.0.0.1:$port" --data-dir "$data")
  if [[ $mode == cluster ]]; then
    local n=$$_$RANDOM
    DB_NAME=hearth_bench_$n
    REDIS_PREFIX=hearth_bench_$n:
    args+=(--database "mysql://root@127.0.0.1:3306/$DB_NAME" --redis redis://127.0.0.1:6379
           --redis-prefix "$REDIS_PREFIX")
  fi
  # A load generator is one address opening thousands of sessions: limits off.
  HEARTH_RATE_LIMITS__ENABLED=false RUST_LOG=warn "$HEARTH" "${args[@]}" >"$WORK/server-$mode.log" 2>&1 &
  SERVER_PID=$!
  URL=http://127.0.0.1:$port
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/api/me" || true) == 401 ]]; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$mode.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server did not come up" >&2
  exit 1
}

# start_extra_node: another cluster node on the current database and Redis prefix; appends
# "--url URL --server-pid PID" to EXTRA_ARGS so scenarios spread over every node.
EXTRA_ARGS=()
start_extra_node() {
  local port data
  port=$(free_port)
  data=$(mktemp -d -p "$WORK")
  HEARTH_RATE_LIMITS__ENABLED=false RUST_LOG=warn "$HEARTH" serve --listen "127.0.0.1:$port" --data-dir "$data" \
    --database "mysql://root@127.0.0.1:3306/$DB_NAME" --redis redis://127.0.0.1:6379 \
    --redis-prefix "$REDIS_PREFIX" >"$WORK/server-extra-$port.log" 2>&1 &
  local pid=$!
  EXTRA_PIDS+=("$pid")
  for _ in $(seq 100); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/me" || true) == 401 ]]; then
      EXTRA_ARGS+=(--url "http://127.0.0.1:$port" --server-pid "$pid")
      return 0
    fi
    sleep 0.2
  done
  echo "extra node did not come up" >&2
  exit 1
}

# bench MODE ARGS...: runs one scenario against the current server and keeps its JSON line.
bench() {
  local mode=$1
  shift
  local scenario=$1
  shift
  echo "== $mode: $scenario $*" >&2
  local line
  if line=$("$BENCH" "$scenario" --url "$URL" --server-pid "$SERVER_PID" --label "$mode" "$@" \
      2> >(tee "$WORK/last.err" >&2)); then
    echo "$line" >>"$RESULTS"
    LAST=$line
  else
    echo "!! $scenario failed" >&2
    jq -nc --arg s "$scenario" --arg m "$mode" --arg c "hearth-bench $scenario $*" \
      --arg e "$(grep -E '^(Error|Caused|  [0-9]+:)' "$WORK/last.err" | head -5 | tr '\n' ' ')" \
      '{scenario: $s, label: $m, command: $c, params: {}, results: {failed: true, error: $e}}' \
      >>"$RESULTS"
    LAST='{}'
  fi
}

# baselines FRAME_BYTES: the steady fan-out's yardsticks, measured within minutes of it — a bare
# writer with the same sockets, rate and write size (the kernel's floor), and Redis pub/sub by
# the same method (the reference the targets were set against), if a Redis answers on :6379.
baselines() {
  local frame_bytes=$1 line
  echo "== baselines: floor, redis-fanout" >&2
  if line=$("$BENCH" floor --label baselines --connections "$FANOUT_SUBSCRIBERS" \
      --rate "$FANOUT_STEADY_RATE" --duration "$FANOUT_SECONDS" --payload "$frame_bytes"); then
    echo "$line" >>"$RESULTS"
  fi
  local redis_pid
  redis_pid=$(redis-cli -h 127.0.0.1 -p 6379 info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
  if [[ -n $redis_pid ]]; then
    if line=$("$BENCH" redis-fanout --label baselines --server-pid "$redis_pid" \
        --subscribers "$FANOUT_SUBSCRIBERS" --rate "$FANOUT_STEADY_RATE" --duration "$FANOUT_SECONDS"); then
      echo "$line" >>"$RESULTS"
    fi
  else
    echo "!! no Redis on 127.0.0.1:6379: Redis pub/sub not measured" >&2
  fi
}

run_mode() {
  local mode=$1
  start_server "$mode"
  echo "== $mode server pid $SERVER_PID at $URL" >&2
  bench "$mode" login --signups "$LOGIN_SIGNUPS" --logins "$LOGIN_LOGINS" --concurrency 4
  bench "$mode" dm --pairs "$DM_PAIRS" --duration "$DM_SECONDS" --window 8
  # Half the rate just reached, spread over the pairs: a stricter reading of the latency target
  # (the faster the server, the higher the rate it is held to).
  local half
  half=$(jq -r --argjson p "$DM_PAIRS" '((.results.acked_per_s // 0) / 2 / $p) | floor' <<<"$LAST")
  [[ $half -gt 0 ]] || half=1
  # The latency runs start once the server has gone quiet: right after the full-rate run its
  # search index is still taking in that run's messages (about a core for ~5 s).
  bench "$mode" dm --pairs "$DM_PAIRS" --duration "$DM_SECONDS" --rate "$half" --settle
  # And at half the target rate (20,000/s embedded, 10,000/s cluster), the rate the target names.
  local target
  [[ $mode == embedded ]] && target=20000 || target=10000
  bench "$mode" dm --pairs "$DM_PAIRS" --duration "$DM_SECONDS" --rate $(( target / 2 / DM_PAIRS )) --settle
  # Memory per socket is measured on a fresh server: the heap that earlier scenarios grew and
  # freed would otherwise be reused by the sockets and hide what they cost.
  stop_server
  start_server "$mode"
  bench "$mode" connections --connections "$CONNECTIONS" --source-ips 4 --accounts 8
  bench "$mode" fanout --subscribers "$FANOUT_SUBSCRIBERS" --senders 1 \
    --rate "$FANOUT_STEADY_RATE" --duration "$FANOUT_SECONDS"
  if [[ $mode == embedded ]]; then
    baselines "$(jq -r '.results.frame_bytes // 230' <<<"$LAST")"
  fi
  bench "$mode" fanout --subscribers "$FANOUT_SUBSCRIBERS" --senders "$FANOUT_BURST_SENDERS" \
    --rate 0 --window "$FANOUT_BURST_WINDOW" --duration "$FANOUT_SECONDS"
  local pages=$HISTORY_PAGES
  [[ $mode == embedded ]] || pages=$HISTORY_PAGES_CLUSTER
  bench "$mode" history --messages "$HISTORY_MESSAGES" --pages "$pages"
  if [[ $mode == cluster ]]; then
    # The same room fanned out by three nodes: subscribers and senders spread over all of
    # them, CPU summed over the three processes.
    EXTRA_ARGS=()
    start_extra_node
    start_extra_node
    bench "$mode-3-nodes" fanout --subscribers "$FANOUT_SUBSCRIBERS" --senders 3 \
      --rate "$FANOUT_STEADY_RATE" --duration "$FANOUT_SECONDS" "${EXTRA_ARGS[@]}"
  fi
  stop_server
}

if [[ -z $RENDER_ONLY ]]; then
  # When and what was measured, so that `--render` later stamps the tables with the run's own.
  jq -nc --arg date "$(date -u +%Y-%m-%dT%H:%MZ)" \
    --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")" \
    '{scenario: "meta", date: $date, commit: $commit}' >>"$RESULTS"
  run_mode embedded
  # 50,000 sockets need more descriptors than some hosts allow (this sandbox's hard limit is
  # 20,000 and cannot be raised): then the connections scenario also runs at full size in a
  # virtual machine with its own kernel (scripts/bench-vm.sh). BENCH_VM=0 skips it.
  if [[ ${BENCH_VM:-auto} != 0 ]] && (( FD_LIMIT < 50000 + 1000 )); then
    echo "== embedded-vm: connections 50000 (fd limit $FD_LIMIT here)" >&2
    if line=$(bash "$ROOT/scripts/bench-vm.sh" 50000); then
      echo "$line" >>"$RESULTS"
    else
      echo "!! connections in a VM failed" >&2
    fi
  fi
  if $CLUSTER; then
    run_mode cluster
  fi
  # Kept for `--render` (the tables can be regenerated without measuring again).
  cp "$RESULTS" "$TARGET/hearth-bench-results.jsonl"
  echo "results: $TARGET/hearth-bench-results.jsonl" >&2
fi

# ---- docs/benchmarks.md ----------------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CPU_MHZ=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
BOGOMIPS=$(grep -m1 'bogomips' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
OUT=$ROOT/docs/benchmarks.md
# Everything from this marker on is hand-written analysis and survives regeneration.
MARKER='<!-- hand-written notes below: kept by scripts/bench.sh -->'
NOTES=
if [[ -f $OUT ]] && grep -qF "$MARKER" "$OUT"; then
  NOTES=$(awk -v m="$MARKER" 'found || index($0, m) { found = 1; print }' "$OUT")
fi
{
  cat <<'INTRO'
# Benchmarks

Generated by `scripts/bench.sh` (do not edit the tables by hand; rerun the script). The load
generator is `crates/hearth-bench`: every scenario creates its own users, talks to a server
on loopback, stops by itself after a fixed duration or count, and prints one JSON line; the
script turns those lines into the tables below.

## Method

- **One machine, two cores, shared.** The server and the load generator run side by side, so
  wall-clock rates measure both of them at once: in the fan-out burst the client spends about
  as much CPU decoding and checking deliveries as the server spends producing them. The fair
  figure is therefore the **server's CPU time per unit of work** (`utime + stime` of the
  server process from `/proc/<pid>/stat`, over the measured window, divided by deliveries,
  acks, pages or connects). It does not depend on who else used the cores; rates and
  latencies do and are lower bounds of what a dedicated server reaches.
- **Every delivery is accounted for.** In `fanout` each message carries its sender, its
  number and its send time; every socket checks each message off in a bitmap, so `lost` and
  `duplicated` are exact counts, and latency is end to end (send → received by that socket).
- **Open and closed loop.** `--rate R` sends on a fixed schedule (latency at a given load);
  `--rate 0` (fan-out) or no `--rate` (dm) keeps a small window of unacknowledged sends per
  socket (the throughput the server can sustain). The `dm` latency runs start once the server
  has gone quiet (`--settle`): after the full-rate run it spends ~6 s taking that run's
  messages into the search index.
- **Embedded mode persists every message** (SQLite, WAL, `synchronous=FULL`); a message is
  delivered only after its commit is on disk.
- **Yardsticks measured beside the server.** What a loopback write costs differs between hosts
  and days (this VM has measured the same commit 2× apart), so the steady fan-out comes with two
  baselines run within minutes of it (`## baselines`): `floor`, one thread doing nothing but
  writing the fan-out's frame size to as many loopback sockets at the same rate (no server can
  spend less per delivery on this machine), and `redis-fanout`, Redis pub/sub measured by the
  same method — the reference the targets were set against (6.1 µs per delivery where they
  were set).

## Targets

| scenario | target |
|---|---|
| fan-out steady | 1,000 subscribers in one room, embedded with persistence, 50 msgs/s in: ≤ 4 µs server CPU per delivery, p99 ≤ 10 ms, 0 lost, 0 duplicated — set as "beat Redis pub/sub" (6.1 µs where it was measured); `## baselines` measures Redis and the kernel's floor beside each run |
| fan-out burst | same room, as fast as possible: ≤ 0.6 µs server CPU per delivery, ≥ 1,000,000 deliveries/s, 0 lost, 0 duplicated |
| dm | ≥ 20,000 acked msgs/s embedded, ≥ 10,000/s cluster; ack p99 ≤ 20 ms at half that rate (10,000 and 5,000 msgs/s; the tables also hold the p99 to half the rate each run reached, a bar that rises as the server gets faster) |
| connections | 50,000 idle sockets, ≤ 10 KiB server RSS each |
| history | a page of 100 at 1,000,000 messages: p99 ≤ 5 ms |
| login | no target: the argon2id budget of the machine |

INTRO
  echo "## Machine"
  echo
  echo "- CPU: $CPU_MODEL, \`nproc\` = $(nproc), $CPU_MHZ MHz, bogomips $BOGOMIPS (the VM's host"
  echo "  differs between days: the same commit has measured up to 2× apart; compare runs of one date)"
  RUN_DATE=$(jq -rs 'map(select(.scenario == "meta")) | first | .date // empty' "$RESULTS")
  RUN_COMMIT=$(jq -rs 'map(select(.scenario == "meta")) | first | .commit // empty' "$RESULTS")
  echo "- date: ${RUN_DATE:-unknown (results saved without it)}, commit ${RUN_COMMIT:-unknown}"
  echo "- open-file limit: $FD_LIMIT (hard)"
  echo
  echo '```'
  echo '$ free -g'
  free -g
  echo '```'
  echo
  for mode in embedded baselines embedded-vm cluster cluster-3-nodes; do
    [[ $(jq -s --arg m "$mode" 'any(.[]; .label == $m)' "$RESULTS") == true ]] || continue
    echo "## $mode"
    echo
    if [[ $mode == embedded-vm ]]; then
      echo "The same release binary in embedded mode, inside a virtual machine with its own kernel"
      echo "(\`scripts/bench-vm.sh\`), because this host's hard open-file limit is below 50,000 sockets"
      echo "on each side. Resident memory per socket is the process's own heap, the same in the guest;"
      echo "connect rates and CPU times are not comparable (an emulated CPU when the guest runs"
      echo "without KVM)."
      echo
    fi
    echo "| run | result | target met? |"
    echo "|---|---|---|"
    jq -r --arg m "$mode" -f /dev/stdin "$RESULTS" <<'JQ'
def r: .results;
def l(k): (r[k] // {}) as $h | "p50 \($h.p50) / p90 \($h.p90) / p99 \($h.p99) / p99.9 \($h.p999) / max \($h.max) ms";
def yn(c): if c then "yes" else "**no**" end;
select(.label == $m) |
if r.failed == true then "| \(.scenario) | failed: \(r.error // "see the script output") | **no** |"
elif .scenario == "fanout" and .params.rate > 0 then
  "| fan-out steady: \(.params.subscribers) subscribers, \(.params.rate) msgs/s | \(r.deliveries) deliveries (\(r.deliveries_per_s)/s), \(r.server_cpu_us_per_delivery) µs server CPU/delivery, latency \(l("latency_ms")), lost \(r.lost), duplicated \(r.duplicated), \(r.frames_per_socket) frames/socket for \(r.sent) messages | " +
  yn(r.server_cpu_us_per_delivery <= 4 and r.latency_ms.p99 <= 10 and r.lost == 0 and r.duplicated == 0) + " |"
elif .scenario == "fanout" then
  "| fan-out burst: \(.params.subscribers) subscribers, \(.params.senders) senders | \(r.sent) msgs in (\(r.sent_per_s)/s), \(r.deliveries) deliveries (\(r.deliveries_per_s)/s), \(r.server_cpu_us_per_delivery) µs server CPU/delivery, latency \(l("latency_ms")), lost \(r.lost), duplicated \(r.duplicated), client CPU \(r.client_cpu_s) s vs server \(r.server_cpu_s) s | " +
  yn(r.server_cpu_us_per_delivery <= 0.6 and r.deliveries_per_s >= 1000000 and r.lost == 0 and r.duplicated == 0) + " |"
elif .scenario == "dm" and .params.rate_per_pair > 0 then
  (.params.rate_per_pair * .params.pairs) as $total |
  "| dm at \(.params.rate_per_pair) msgs/s × \(.params.pairs) pairs = \($total)/s\(if $total * 2 == (if $m == "cluster" then 10000 else 20000 end) then " (half the target rate)" else " (half the rate reached)" end) | \(r.acked_per_s) acked/s, ack latency \(l("ack_latency_ms")), errors \(r.errors), unacked \(r.unacked)\(if r.settle_s then ", after \(r.settle_s) s for the server to go quiet" else "" end) | " +
  yn(r.ack_latency_ms.p99 <= 20) + " (p99 ≤ 20 ms) |"
elif .scenario == "dm" then
  "| dm max: \(.params.pairs) pairs, window \(.params.window) | \(r.acked_per_s) acked/s, \(r.server_cpu_us_per_ack) µs server CPU/ack, ack latency \(l("ack_latency_ms")), errors \(r.errors) | " +
  yn(r.acked_per_s >= (if $m == "cluster" then 10000 else 20000 end)) + " |"
elif .scenario == "connections" then
  ([r.server_rss_per_connection_kib, (r.server_rss_per_connection_kib_second_half // 0)] | max) as $kib |
  "| connections: \(.params.connections) idle sockets (fd limit \(.params.fd_limit)) | \(r.open) open, \(r.failed) failed, \(r.connects_per_s) connects/s\(if r.server_sockets_open != null then ", the server counts \(r.server_sockets_open) open, \(r.closed_by_server_while_held) closed by it while held" else "" end), server RSS \(r.server_rss_before_mib) → \(r.server_rss_after_mib) MiB = **\(r.server_rss_per_connection_kib) KiB/connection**\(if r.server_rss_per_connection_kib_second_half then " (second half alone: \(r.server_rss_per_connection_kib_second_half) KiB)" else "" end) | " +
  yn($kib <= 10 and r.open >= 50000 and (r.server_sockets_open == null or r.server_sockets_open >= 50000)) + (if r.open >= 50000 then "" elif .params.vm then " (\(r.open) of \(.params.connections) held: \(r.failed) refused)" else " (only \(r.open) sockets: fd limit)" end) + (if .params.vm then " (in a \(.params.vm.cpus)-CPU qemu \(.params.vm.accel) guest, \(.params.vm.memory_mib) MiB, \(.params.vm.kernel))" else "" end) + " |"
elif .scenario == "history" then
  "| history: \(r.messages_in_room) messages, \(r.pages_done) pages | \(r.pages_per_s) pages/s, \(r.server_cpu_us_per_page) µs server CPU/page, latency \(l("page_latency_ms")), short pages \(r.short_pages)\(if r.fill_msgs_per_s then ", fill \(r.fill_msgs_per_s) msgs/s, then \(r.settle_s) s for the server to go quiet" else "" end) | " +
  yn(r.page_latency_ms.p99 <= 5 and r.messages_in_room >= 1000000) + " |"
elif .scenario == "floor" then
  "| floor: a bare writer, \(.params.connections) loopback sockets × \(.params.rate) writes/s of \(.params.payload) bytes (fan-out steady's frame size) | \(r.writes) writes, **\(r.writer_cpu_us_per_write) µs writer CPU/write** (user \(r.writer_user_s) s, system \(r.writer_sys_s) s), a pass over every socket p50 \(r.pass_ms.p50) / p99 \(r.pass_ms.p99) / max \(r.pass_ms.max) ms, short writes \(r.short_writes) | — |"
elif .scenario == "redis-fanout" then
  "| Redis pub/sub: \(.params.subscribers) subscribers, \(.params.rate) msgs/s of \(.params.payload) bytes | \(r.deliveries) deliveries (\(r.deliveries_per_s)/s), **\(r.server_cpu_us_per_delivery) µs Redis CPU/delivery**, latency \(l("latency_ms")), lost \(r.lost), duplicated \(r.duplicated) | — |"
elif .scenario == "login" then
  "| login: concurrency \(.params.concurrency) | \(r.signups_per_s) sign-ups/s (p99 \(r.signup_latency_ms.p99) ms), \(r.logins_per_s) logins/s (p99 \(r.login_latency_ms.p99) ms), \(r.server_cpu_us_per_request) µs server CPU/request | — |"
else empty end
JQ
    echo
    echo "Commands (\`--server-pid\` and the port were those of that run):"
    echo
    echo '```sh'
    jq -r --arg m "$mode" 'select(.label == $m) | .command | sub("^.*/hearth-bench"; "hearth-bench")' "$RESULTS"
    echo '```'
    echo
  done
  if [[ -n $NOTES ]]; then
    echo "$NOTES"
  else
    echo "$MARKER"
  fi
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT" >&2
cat "$RESULTS"

#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run calls this).
#
#   1. services: MariaDB, Redis, Chromium, Node, espeak-ng (installed and started if missing);
#      the offline transcriber's venv (scripts/install-transcriber.sh, cached after one run)
#   2. Rust: fmt, clippy, unit and integration tests on both backends (SQLite; MariaDB + Redis)
#   3. web client: unit tests (Vitest), the committed build is current, and end-to-end tests
#      in headless Chromium against a real server, in embedded and in cluster mode
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/hearth-target}
export HEARTH_TEST_MYSQL=${HEARTH_TEST_MYSQL:-mysql://root@127.0.0.1:3306}
export HEARTH_TEST_REDIS=${HEARTH_TEST_REDIS:-redis://127.0.0.1:6379}
# The Whisper venv the voice tests run (they fail, never skip, without it).
export HEARTH_WHISPER_VENV=${HEARTH_WHISPER_VENV:-$HOME/.cache/hearth-whisper}

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/services.sh
scripts/install-transcriber.sh
# Databases left behind by interrupted earlier runs.
mariadb -h 127.0.0.1 -uroot -N -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'hearth\\_t\\_%'" |
  while read -r db; do mariadb -h 127.0.0.1 -uroot -e "DROP DATABASE \`$db\`"; done

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test (both backends)"
cargo test --workspace 2>&1 | tee "$CARGO_TARGET_DIR/hearth-cargo-test.log"

step "web client: install, unit tests, build is current"
cd "$root/web"
npm ci --no-audit --no-fund --loglevel=error
NO_COLOR=1 npm test 2>&1 | tee "$CARGO_TARGET_DIR/hearth-vitest.log"
fresh=$(mktemp -d)
npx tsc --noEmit
npx vite build --logLevel error --outDir "$fresh" --emptyOutDir
if ! diff -r "$fresh" dist >/dev/null; then
  echo "web/dist is stale: run 'npm run build' in web/ and commit web/dist" >&2
  diff -r "$fresh" dist | head -20 >&2
  exit 1
fi
rm -rf "$fresh"

step "web client end to end (headless Chromium)"
: >"$CARGO_TARGET_DIR/hearth-e2e.log"
cargo build --quiet -p hearth --manifest-path "$root/Cargo.toml"
hearth_bin="$CARGO_TARGET_DIR/debug/hearth"
run_e2e() { # run_e2e <label> <hearth flags...>
  local label=$1; shift
  local data port log pid
  data=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  log="$data/hearth.log"
  # The browser tests seed 130 messages in a burst; the limits have their own Rust tests.
  HEARTH_RATE_LIMITS__ENABLED=false \
    "$hearth_bin" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "hearth ($label) did not start" >&2; exit 1; }
    sleep 0.2
  done
  echo "--- e2e against hearth ($label) on port $port"
  if ! HEARTH_URL="http://127.0.0.1:$port" npm run --silent e2e 2>&1 | tee -a "$CARGO_TARGET_DIR/hearth-e2e.log"; then
    kill "$pid" 2>/dev/null || true
    echo "--- server log ($label):" >&2; tail -50 "$log" >&2
    exit 1
  fi
  kill -TERM "$pid" && wait "$pid" || true
  rm -rf "$data"
}
run_e2e embedded
suffix="$$_$(date +%s)"
run_e2e cluster --database "$HEARTH_TEST_MYSQL/hearth_t_e2e_$suffix" \
  --redis "$HEARTH_TEST_REDIS" --redis-prefix "hearth_t_e2e_$suffix:"
mariadb -h 127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS hearth_t_e2e_$suffix"

cd "$root"
sum() { grep -Eo "$1" "$2" | grep -Eo '[0-9]+' | awk '{s+=$1} END {print s+0}'; }
rust=$(sum '[0-9]+ passed' "$CARGO_TARGET_DIR/hearth-cargo-test.log")
web=$(sum 'Tests +[0-9]+ passed' "$CARGO_TARGET_DIR/hearth-vitest.log")
e2e=$(sum '^# pass [0-9]+' "$CARGO_TARGET_DIR/hearth-e2e.log")
step "Rust $rust, web unit $web, browser e2e $e2e"
echo "total: $((rust + web + e2e)) passed, 0 failed"

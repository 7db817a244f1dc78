#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1,
# built from the Apache Kafka artifacts on Maven Central. No Docker, no tarball.
#
#   deploy/local/kafka.sh fetch     resolve the jars into the cache (once)
#   deploy/local/kafka.sh up        format storage if needed, start, wait until ready
#   deploy/local/kafka.sh down      stop the broker started by `up`, by its PID
#   deploy/local/kafka.sh status    exit 0 if the broker answers
#   deploy/local/kafka.sh run CLASS [ARGS...]   run a Kafka tool class from the jars
#
# Settings (environment): KAFKA_VERSION, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# KAFKA_CACHE (jar cache, default .cache/ in the repo; a git worktree without the jars uses
# its main checkout's .cache/ when that one has them), KAFKA_RUN_DIR (data, logs, pid),
# KAFKA_EXTRA_PROPERTIES (lines appended to server.properties, e.g. by tests/run_shifted.sh),
# KAFKA_ADD_SCRAM (SCRAM credentials written at format time, one a line, as `kafka-storage
# format --add-scram` takes them: 'SCRAM-SHA-512=[name=NAME,password=SECRET]'; see
# tests/integration/secured_broker.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
default_cache() {
  # This checkout's .cache/ (a fresh clone fetches into it); a git worktree shares the jars
  # its main checkout already resolved instead of fetching them again.
  local own="$ROOT/.cache" common main
  if [[ ! -f "$own/kafka-$KAFKA_VERSION/libs/.complete" ]] \
      && common="$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)"; then
    main="$(dirname "$common")/.cache"
    if [[ -f "$main/kafka-$KAFKA_VERSION/libs/.complete" ]]; then echo "$main"; return; fi
  fi
  echo "$own"
}
KAFKA_CACHE="${KAFKA_CACHE:-$(default_cache)}"
KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$ROOT/.run/kafka-$KAFKA_PORT}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
LIBS="$KAFKA_CACHE/kafka-$KAFKA_VERSION/libs"
PID_FILE="$KAFKA_RUN_DIR/kafka.pid"
CONFIG="$KAFKA_RUN_DIR/server.properties"

# A closed stderr (`make demo 2>&1 | tee log` ended by Ctrl-C) must not end the script
# before `down` has stopped the broker: the subshell takes the SIGPIPE or EPIPE instead.
log() { (echo "[kafka] $*" >&2) || true; }

fetch() {
  if [[ -f "$LIBS/.complete" ]]; then return 0; fi
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies with mvn"
  rm -rf "$LIBS"
  mvn -q -B -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
}

java_run() {
  # Run a Kafka main class with the cached jars on the class path.
  java $KAFKA_HEAP_OPTS -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_RUN_DIR/logs" -cp "$LIBS/*" "$@"
}

is_ready() {
  # The broker is ready when it answers a metadata request on the client port.
  java -Xmx128m -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$LIBS/*" \
    org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    >/dev/null 2>&1
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

up() {
  fetch
  if pid="$(running_pid)"; then
    log "reusing broker pid $pid on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  mkdir -p "$KAFKA_RUN_DIR/logs"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$KAFKA_RUN_DIR/data#g" "$HERE/server.properties" > "$CONFIG"
  if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then printf '%s\n' "$KAFKA_EXTRA_PROPERTIES" >> "$CONFIG"; fi
  if [[ ! -f "$KAFKA_RUN_DIR/data/meta.properties" ]]; then
    local cluster_id
    # --cluster-id=ID, not -t ID: a base64 id may start with "-", which would read as an option.
    cluster_id="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    log "formatting storage in $KAFKA_RUN_DIR/data (cluster $cluster_id)"
    local scram=() line
    while IFS= read -r line; do
      if [[ -n "$line" ]]; then scram+=(--add-scram "$line"); fi
    done <<< "${KAFKA_ADD_SCRAM:-}"
    java_run kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" -c "$CONFIG" "${scram[@]}" >/dev/null
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $KAFKA_RUN_DIR/logs/server.out)"
  # setsid: a Ctrl-C meant for the caller (make demo) must not reach the broker.
  setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -Dkafka.logs.dir="$KAFKA_RUN_DIR/logs" -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
    > "$KAFKA_RUN_DIR/logs/server.out" 2>&1 &
  echo $! > "$PID_FILE"
  local deadline=$((SECONDS + 90))
  until is_ready; do
    if ! running_pid >/dev/null; then
      log "broker exited during start; last log lines:"; tail -n 30 "$KAFKA_RUN_DIR/logs/server.out" >&2 || true
      rm -f "$PID_FILE"; return 1
    fi
    if (( SECONDS > deadline )); then log "broker not ready after 90 s"; down; return 1; fi
    sleep 0.5
  done
  log "ready (pid $(cat "$PID_FILE"))"
}

down() {
  local pid
  if ! pid="$(running_pid)"; then log "no broker running from $KAFKA_RUN_DIR"; rm -f "$PID_FILE"; return 0; fi
  log "stopping pid $pid"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "still running after 30 s: kill -9 $pid"; kill -KILL "$pid"; fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  down) down ;;
  status) is_ready ;;
  reset) down; rm -rf "$KAFKA_RUN_DIR/data" ;;
  run) shift; fetch; java_run "$@" ;;
  *) echo "usage: $0 fetch|up|down|status|reset|run CLASS [ARGS...]" >&2; exit 2 ;;
esac

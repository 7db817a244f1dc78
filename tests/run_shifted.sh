#!/usr/bin/env bash
# The test suite with the wall clock of every Python process shifted, to show that no test
# depends on the date or the hour it runs (`make test-shifted`).
#
#   tests/run_shifted.sh [SHIFT] [PYTEST ARGS...]   (default arguments: -q -ra tests)
#     SHIFT  an offset: +365d, -365d, +8h, -90m, +30s; or "@" and a moment the clock starts
#            from and runs on: "@2027-03-28 00:50:00 UTC" (a Paris DST night). Default +365d.
#
# How: tests/shifted_clock/sitecustomize.py, on PYTHONPATH, starts time-machine in pytest and
# in every Python process it starts (workers, simulator, sender, CLI), with one offset for
# all; the monotonic clock stays real. libfaketime was tried first and does not serve:
# under Debian 12's 0.9.10, Python 3.11's time.sleep fails with EINVAL (or hangs when the
# monotonic clock is faked too) and the JVM never becomes ready.
#
# The broker, Prometheus and Chromium keep the machine's clock. The broker runs on its own
# port and data directory, configured for the skew this creates between producers and it:
#   - record timestamps a year ahead of the broker are accepted (Kafka 4 rejects more than
#     1 h ahead by default: log.message.timestamp.after.max.ms), and a year behind;
#   - no time-based retention (records stamped a year back would be deleted within minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

spec="${1:-+365d}"
(( $# )) && shift
if [[ "$spec" == @* ]]; then
  offset_s=$(( $(date -d "${spec#@}" +%s) - $(date +%s) ))
elif [[ "$spec" =~ ^([+-])([0-9]+)([smhd]?)$ ]]; then
  declare -A unit_s=([s]=1 [m]=60 [h]=3600 [d]=86400)
  offset_s=$(( ${BASH_REMATCH[2]} * ${unit_s[${BASH_REMATCH[3]:-s}]} ))
  [[ "${BASH_REMATCH[1]}" == - ]] && offset_s=$(( -offset_s ))
else
  echo "run_shifted: SHIFT is +365d, -8h, +30s or @<date>, not '$spec'" >&2; exit 2
fi

export KAFKA_PORT="${SHIFTED_KAFKA_PORT:-9192}"
export KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
export KAFKA_RUN_DIR="$PWD/.run/kafka-shifted-$KAFKA_PORT"
export KAFKA_EXTRA_PROPERTIES="log.message.timestamp.after.max.ms=9223372036854775807
log.message.timestamp.before.max.ms=9223372036854775807
log.retention.ms=-1"
export JOURNEY_BROKER="127.0.0.1:$KAFKA_PORT"

KAFKA=deploy/local/kafka.sh
$KAFKA reset >/dev/null 2>&1 || true
trap '$KAFKA down' EXIT
$KAFKA up

export JOURNEY_TEST_CLOCK_SHIFT_S="$offset_s"
# aiokafka's C record builder stamps records with the C library's clock, which time-machine
# does not shift: its pure-Python builder reads time.time() like everything else.
export AIOKAFKA_NO_EXTENSIONS=1
export PYTHONPATH="$PWD/tests/shifted_clock${PYTHONPATH:+:$PYTHONPATH}"
shifted_now=$(.venv/bin/python -c 'import datetime; print(datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ (%A)"))')
echo "run_shifted: the tests' clock: $shifted_now, the machine's: $(date -u '+%Y-%m-%dT%H:%M:%SZ') (offset ${offset_s} s)"
set +e
(( $# )) || set -- -q -ra tests
.venv/bin/pytest "$@"
rc=$?
echo "run_shifted: pytest exited $rc with the clock at $shifted_now when it started"
exit $rc

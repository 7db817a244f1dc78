#!/usr/bin/env bash
# The chart and graph layout libraries of the worker's web page (/ui/), served locally: no
# CDN, works offline.
#
#   deploy/local/ui_vendor.sh
#
# Fetches pinned Chart.js, its Sankey plugin and dagre (the journeys page's graph layout)
# from the npm registry with `npm pack` into .cache/npm/ (once: a tarball already there is
# reused) and copies their minified browser builds into stream/web/static/vendor/
# (git-ignored). Idempotent; prints one line.
# Settings (environment): UI_VENDOR_CACHE (tarball cache, default .cache/npm in the repo).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${UI_VENDOR_CACHE:-$ROOT/.cache/npm}"
VENDOR="$ROOT/stream/web/static/vendor"

# package@version  file inside the package  name under vendor/
PACKAGES=(
  "chart.js@4.6.1 dist/chart.umd.js chart.umd.js"
  "chartjs-chart-sankey@0.19.1 dist/chartjs-chart-sankey.min.js chartjs-chart-sankey.min.js"
  "@dagrejs/dagre@3.1.3 dist/dagre.min.js dagre.min.js"
)

mkdir -p "$CACHE" "$VENDOR"
# Everything is written beside its destination first and moved into place whole, so an
# interrupted run leaves no half tarball in the cache and no half file in vendor/.
WORK="$(mktemp -d "$CACHE/.ui_vendor.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

did=() specs=()
for entry in "${PACKAGES[@]}"; do
  read -r spec inner target <<<"$entry"
  specs+=("$spec")
  name="${spec%@*}" version="${spec##*@}"
  packed="$(tr / - <<<"${name#@}")-$version.tgz"  # npm pack's name: @scope/x -> scope-x
  tarball="$CACHE/$packed"
  if [[ ! -f "$tarball" ]]; then
    if ! output="$(cd "$WORK" && npm pack --silent "$spec" 2>&1)"; then
      echo "ui_vendor: npm pack $spec failed:" >&2
      echo "$output" >&2
      exit 1
    fi
    mv -f "$WORK/$packed" "$tarball"
    did+=("fetched $spec")
  fi
  if [[ ! -f "$VENDOR/$target" || "$tarball" -nt "$VENDOR/$target" ]]; then
    tar -xzOf "$tarball" "package/$inner" >"$WORK/$target"
    chmod 0644 "$WORK/$target"
    mv -f "$WORK/$target" "$VENDOR/$target"
    did+=("installed $target")
  fi
done

list() { local joined; joined="$(printf '%s, ' "$@")"; echo "${joined%, }"; }
if (( ${#did[@]} )); then
  echo "ui_vendor: $(list "${did[@]}") in ${VENDOR#"$ROOT"/}"
else
  echo "ui_vendor: ${specs[*]} already in ${VENDOR#"$ROOT"/}"
fi

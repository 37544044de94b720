# What every whole-command bench script starts with; sourced, after `set -euo pipefail`, from
# the repository's top directory:
#
#   need TOOL[:PACKAGE]...   installs with apt-get what is not on PATH (PACKAGE defaults to TOOL)
#   start_bench WORK         the bookworm images under WORK (benches/bookworm.sh, once), the
#                            release CLI as $lc, a temporary directory as $out (removed on exit)
#   rss COMMAND...           `N MiB peak, S s` of one run (GNU time), the output discarded

need() {
  local spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null || {
      apt-get update -qq && apt-get install -y -qq "${spec#*:}" >/dev/null
    }
  done
}

start_bench() {
  bash benches/bookworm.sh "$1/bookworm" >/dev/null
  cargo build --quiet --release --features cli
  lc=$PWD/target/release/layercake
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
}

rss() {
  /usr/bin/time -f '%M %e' -o "$out/time" "$@" >/dev/null 2>&1
  read -r kib secs <"$out/time"
  printf '%s MiB peak, %s s' "$((kib / 1024))" "$secs"
}

#!/usr/bin/env bash
# The store on disk, measured on real images (issue 8's figures), in one run:
#
#   ten images on one base    disk used by the store after one image and after ten; time of
#                             the first load and of each later one (every shared layer
#                             "already exists")
#   load beside skopeo        `layercake load` of a docker-archive and of an oci-archive into a
#                             store vs `skopeo copy` of the same file into an OCI layout
#   peak RSS                  load, images, inspect, verify, df of the bookworm image
#   two loads at once         two `layercake load` into one root at the same time
#
# Usage: bash benches/store.sh [WORK]   (default /work/scratch-bench; the bookworm image is
# built there by benches/bookworm.sh, once; the ten images by this script, once)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/work/scratch-bench}
source benches/lib.sh
need umoci skopeo hyperfine jq
start_bench "$work"
ten=$work/ten

# Ten images on the bookworm base: each adds one small file of its own (umoci insert), then
# goes to a docker-archive (uncompressed layers) and an oci-archive (gzip layers) of its own.
if [ ! -f "$ten/app10.oci.tar" ]; then
  rm -rf "$ten" && mkdir -p "$ten"
  cp -a "$work/bookworm/oci" "$ten/layout"
  for i in $(seq 1 10); do
    head -c 65536 /dev/urandom >"$ten/file$i"
    umoci insert --image "$ten/layout:base" --tag "app$i" "$ten/file$i" "/srv/app$i" >/dev/null
    skopeo copy -q "oci:$ten/layout:app$i" "docker-archive:$ten/app$i.tar:bench/app:$i"
    skopeo copy -q "oci:$ten/layout:app$i" "oci-archive:$ten/app$i.oci.tar:bench/app:$i"
  done
fi

bytes() { du -sb "$1" | cut -f1; }
secs() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

for kind in tar oci.tar; do
  echo "== ten images on one base, loaded one by one from app*.$kind"
  root=$out/root-$kind
  first=$(secs "$lc" --root "$root" load -i "$ten/app1.$kind")
  one=$(bytes "$root")
  later=()
  for i in $(seq 2 10); do
    later+=("$(secs "$lc" --root "$root" load -i "$ten/app$i.$kind")")
  done
  all=$(bytes "$root")
  "$lc" --root "$root" load -i "$ten/app10.$kind" | sed 's/^/  second load of app10: /'
  worst=$(printf '%s\n' "${later[@]}" | sort -g | tail -1)
  echo "  disk: one image $one bytes, ten images $all bytes: $(echo "scale=3; $all / $one" | bc) x"
  echo "  first load $first s; later loads $(printf '%s ' "${later[@]}")s"
  echo "  slowest later load / first load: $(echo "scale=4; $worst / $first" | bc)"
  "$lc" --root "$root" verify | tail -1 | sed 's/^/  verify: /'
  echo
done

echo "== load beside skopeo copy into an OCI layout (same file, a fresh root each run)"
hyperfine --warmup 1 --runs 5 --export-markdown "$out/load.md" \
  --prepare "rm -rf $out/r $out/s" \
  -n 'layercake load (docker-archive)' "$lc --root $out/r load -i $work/bookworm/latest.tar" \
  -n 'skopeo copy (docker-archive)' "skopeo copy -q docker-archive:$work/bookworm/latest.tar oci:$out/s:latest" \
  -n 'layercake load (oci-archive)' "$lc --root $out/r load -i $work/bookworm/latest-oci.tar" \
  -n 'skopeo copy (oci-archive)' "skopeo copy -q oci-archive:$work/bookworm/latest-oci.tar oci:$out/s:latest"
cat "$out/load.md"

echo
echo "== peak RSS, one run each (bookworm: $(du -sh "$work/bookworm/latest.tar" | cut -f1) docker-archive)"
rm -rf "$out/r"
printf '  %-60s %s\n' "layercake load -i latest.tar (fresh root)" "$(rss "$lc" --root "$out/r" load -i "$work/bookworm/latest.tar")"
printf '  %-60s %s\n' "layercake load -i latest-oci.tar (layers exist)" "$(rss "$lc" --root "$out/r" load -i "$work/bookworm/latest-oci.tar")"
rm -rf "$out/r2"
printf '  %-60s %s\n' "layercake load -i latest-oci.tar (fresh root, gzip)" "$(rss "$lc" --root "$out/r2" load -i "$work/bookworm/latest-oci.tar")"
for cmd in images "inspect bookworm" "history bookworm" "layers bookworm" verify df; do
  # shellcheck disable=SC2086
  printf '  %-60s %s\n' "layercake $cmd" "$(rss "$lc" --root "$out/r" $cmd)"
done

echo
echo "== two loads into one root at once"
rm -rf "$out/c"
"$lc" --root "$out/c" load -i "$ten/app1.oci.tar" >"$out/c1.log" 2>&1 &
a=$!
"$lc" --root "$out/c" load -i "$ten/app2.oci.tar" >"$out/c2.log" 2>&1 &
b=$!
wait $a && echo "  first: $(tail -1 "$out/c1.log")"
wait $b && echo "  second: $(tail -1 "$out/c2.log")"
echo "  blobs: $(ls "$out/c/blobs/sha256" | wc -l) (base, two tops, two configs, two manifests: 7)"
"$lc" --root "$out/c" verify | tail -1 | sed 's/^/  verify: /'

#!/usr/bin/env bash
# Whole commands side by side with the peers, on the same images, in one run: ratios matter,
# not absolute times (shared, noisy machines). Peak RSS is each command's own (GNU time).
#
#   inspect, history  layercake --no-size (the index alone) vs skopeo inspect (oci layout of
#                     three refs sharing a base); inspect with Size reads every layer
#   layers            layercake (verify and parse every layer) vs zlib-rs inflating the same
#                     blob alone (benches/read.rs)
#   export, unpack    layercake vs umoci unpack      (flatten the image)
#   convert           layercake vs skopeo copy       (OCI layout -> docker-archive)
#   4 GiB layer       layercake export and unpack of one incompressible 4 GiB layer: peak RSS
#
# Usage: bash benches/peers.sh [WORK]   (default /work/scratch-bench; the images are built
# there by benches/bookworm.sh, once)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/work/scratch-bench}
source benches/lib.sh
need umoci skopeo hyperfine
start_bench "$work"
cd "$work/bookworm"


echo "== image: $(du -sh oci | cut -f1) OCI layout, refs: $(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | join(", ")' oci/index.json)"
echo
echo "== peak RSS, one run each"
for cmd in "$lc inspect --no-size oci:oci:latest" "$lc history --no-size oci:oci:latest" \
  "skopeo inspect oci:oci:latest" "$lc inspect oci:oci:latest" \
  "$lc layers oci:oci:latest" "$lc diff oci:oci:base oci:oci:latest" \
  "$lc inspect --no-size latest.tar" "$lc layers latest.tar"; do
  printf '  %-70s %s\n' "${cmd/$lc/layercake}" "$(rss $cmd)"
done
rm -rf "$out/unpacked"
printf '  %-70s %s\n' "layercake export oci:oci:latest" "$(rss "$lc" export oci:oci:latest -o "$out/flat.tar")"
printf '  %-70s %s\n' "layercake unpack oci:oci:latest" "$(rss "$lc" unpack oci:oci:latest "$out/unpacked")"
rm -rf "$out/unpacked" "$out/flat.tar"

echo
hyperfine --warmup 2 --runs 20 -N --export-markdown "$out/inspect.md" \
  -n 'layercake inspect --no-size' "$lc inspect --no-size oci:oci:latest" \
  -n 'layercake history --no-size' "$lc history --no-size oci:oci:latest" \
  -n 'skopeo inspect' 'skopeo inspect oci:oci:latest'
hyperfine --warmup 1 --runs 5 --export-markdown "$out/export.md" \
  --prepare "rm -rf $out/unpacked $out/flat.tar" \
  -n 'layercake export' "$lc export oci:oci:latest -o $out/flat.tar" \
  -n 'layercake unpack' "$lc unpack oci:oci:latest $out/unpacked" \
  -n 'umoci unpack' "umoci unpack --image oci:latest $out/unpacked"
hyperfine --warmup 1 --runs 5 --export-markdown "$out/convert.md" \
  --prepare "rm -f $out/a.tar $out/b.tar" \
  -n 'layercake convert' "$lc convert oci:oci:latest docker-archive:$out/a.tar:img:1" \
  -n 'skopeo copy' "skopeo copy -q oci:oci:latest docker-archive:$out/b.tar:img:1"
cat "$out/inspect.md" "$out/export.md" "$out/convert.md"

echo
echo "== layers against the inflate floor (benches/read.rs), the base layer blob"
base=$(jq -r '.layers[0].digest' "oci/blobs/sha256/$(jq -r '.manifests[0].digest' oci/index.json | cut -d: -f2)" | cut -d: -f2)
(cd - >/dev/null && cargo bench --quiet --bench read -- "$work/bookworm/oci/blobs/sha256/$base")

if [ -d "$work/big/big" ]; then
  echo
  echo "== one 4 GiB incompressible layer: peak RSS"
  cd "$work/big"
  printf '  %-70s %s\n' "layercake export oci:big:big (gzip layer)" "$(rss "$lc" export oci:big:big -o "$out/big.tar")"
  rm -f "$out/big.tar"
  printf '  %-70s %s\n' "layercake export big.tar (docker-archive)" "$(rss "$lc" export big.tar -o "$out/big.tar")"
  rm -f "$out/big.tar"
  printf '  %-70s %s\n' "layercake unpack oci:big:big" "$(rss "$lc" unpack oci:big:big "$out/bigdir")"
  rm -rf "$out/bigdir"
else
  echo "(no 4 GiB image: build it with bash benches/bookworm.sh --big $work/big)"
fi

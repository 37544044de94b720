#!/usr/bin/env bash
# Whole commands side by side with the peers, on the same image, in one run: ratios matter,
# not absolute times (shared, noisy machines).
#
#   layercake export  vs  umoci unpack        (flatten an image)
#   layercake convert vs  skopeo copy         (OCI layout -> docker-archive)
#
# Usage: bash benches/peers.sh [SOURCE_DIR]   (default /usr/lib, copied into the image)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-/usr/lib}
for tool in umoci skopeo hyperfine; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
cargo build --quiet --release --features cli
lc=$PWD/target/release/layercake
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

umoci init --layout oci >/dev/null
umoci new --image oci:img >/dev/null
umoci unpack --image oci:img bundle >/dev/null
cp -a "$src" bundle/rootfs/payload
umoci repack --image oci:img bundle >/dev/null
rm -rf bundle
echo "image: $(du -sh oci | cut -f1) OCI layout (gzip), $(find "$src" | wc -l) paths from $src"

hyperfine --warmup 1 --runs 5 --export-markdown export.md \
  --prepare 'rm -rf unpacked out.tar' \
  -n 'layercake export' "$lc export oci:oci:img -o out.tar" \
  -n 'umoci unpack' 'umoci unpack --image oci:img unpacked'
hyperfine --warmup 1 --runs 5 --export-markdown convert.md \
  --prepare 'rm -f a.tar b.tar' \
  -n 'layercake convert' "$lc convert oci:oci:img docker-archive:a.tar:img:1" \
  -n 'skopeo copy' 'skopeo copy -q oci:oci:img docker-archive:b.tar:img:1'
cat export.md convert.md

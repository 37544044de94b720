#!/usr/bin/env bash
# Pull and push against a real registry (docker-registry, distribution 2.8) on loopback, side
# by side with skopeo, in one run: ratios matter, not absolute times (shared, noisy machines).
# Peak RSS is each command's own (GNU time). Request counts come from the registry's access log.
#
#   pull           layercake pull into an empty store  vs  skopeo copy docker://… oci:DIR
#                  (skopeo only copies bytes; layercake also decompresses and indexes)
#   second pull    layercake pull of what the store has: time, and blob GETs (must be 0)
#   push           of an image whose base the repository has: blob uploads and mounts
#   large image    four 256 MiB layers pulled four at once: peak RSS (benches/registry_big.py)
#
# Usage: bash benches/registry.sh [WORK]   (default /work/scratch-bench; the bookworm layout
# is built there by benches/bookworm.sh, once)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
work=${1:-/work/scratch-bench}
source benches/lib.sh
need docker-registry skopeo hyperfine
start_bench "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$out/config.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $out/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
log: {accesslog: {disabled: false}, level: error}
YML
docker-registry serve "$out/config.yml" >"$out/registry.log" 2>&1 &
registry=$!
trap 'kill $registry; wait $registry 2>/dev/null || true; rm -rf "$out"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; do sleep 0.1; done
reg=127.0.0.1:$port

# Requests in the access log since mark $1 matching the extended regex $2.
requests() { tail -c +"$(($1 + 1))" "$out/registry.log" | grep -cE "$2" || true; }
mark() { stat -c %s "$out/registry.log"; }

cd "$work/bookworm"
for ref in base mid latest; do
  skopeo copy -q --dest-tls-verify=false "oci:oci:$ref" "docker://$reg/bookworm:$ref"
done
echo "== bookworm in the registry: $(du -sh oci | cut -f1) OCI layout, tags base, mid, latest"
echo
echo "== pull into an empty store, one run each: peak RSS"
printf '  %-64s %s\n' "layercake pull $reg/bookworm:latest" "$(rss "$lc" --root "$out/store" pull "$reg/bookworm:latest")"
printf '  %-64s %s\n' "skopeo copy docker://… oci:DIR" "$(rss skopeo copy -q --src-tls-verify=false "docker://$reg/bookworm:latest" "oci:$out/sk:latest")"
ours=$("$lc" --root "$out/store" inspect --no-size "$reg/bookworm:latest" | jq -r '.[0] | .Id + " " + .RepoDigests[0]')
theirs=$(skopeo inspect --tls-verify=false "docker://$reg/bookworm:latest" | jq -r '.Digest')
echo "  pulled: id ${ours%% *}, manifest ${ours##*@} (skopeo inspect: $theirs, config $(jq -r .config.digest "$out/sk/blobs/sha256/$(jq -r '.manifests[0].digest' "$out/sk/index.json" | cut -d: -f2)"))"
m=$(mark)
printf '  %-64s %s\n' "layercake pull (again: up to date)" "$(rss "$lc" --root "$out/store" pull "$reg/bookworm:latest")"
echo "  second pull: $(requests "$m" '"GET /v2/[^ ]*/blobs/') blob GETs, $(requests "$m" '"(GET|HEAD) /v2/[^ ]*/manifests/') manifest requests"
echo
hyperfine --warmup 1 --runs 7 --export-markdown "$out/pull.md" \
  --prepare "rm -rf $out/store $out/sk" \
  -n 'layercake pull' "$lc --root $out/store pull -q $reg/bookworm:latest" \
  -n 'skopeo copy docker:// oci:' "skopeo copy -q --src-tls-verify=false docker://$reg/bookworm:latest oci:$out/sk:latest"
hyperfine --warmup 1 --runs 20 -N --export-markdown "$out/again.md" \
  -n 'layercake pull (up to date)' "$lc --root $out/store pull -q $reg/bookworm:latest"
cat "$out/pull.md" "$out/again.md"

echo
echo "== push of an image whose base the repository has"
rm -rf "$out/store"
"$lc" --root "$out/store" pull -q "$reg/bookworm:latest" >/dev/null
"$lc" --root "$out/store" tag "$reg/bookworm:latest" "$reg/pushed:latest"
"$lc" --root "$out/store" pull -q "$reg/bookworm:base" >/dev/null
"$lc" --root "$out/store" tag "$reg/bookworm:base" "$reg/pushed:base"
"$lc" --root "$out/store" push "$reg/pushed:base" >/dev/null
m=$(mark)
"$lc" --root "$out/store" push "$reg/pushed:latest"
echo "  push of latest after base: $(requests "$m" '"(PATCH|PUT) /v2/[^ ]*/blobs/uploads') blob uploads, $(requests "$m" '"POST /v2/[^ ]*/blobs/uploads/\?mount') mounts, $(requests "$m" '"HEAD /v2/[^ ]*/blobs/') blob HEADs"

echo
echo "== a 1 GiB image of four 256 MiB layers (random bytes): peak RSS does not grow with it"
python3 "$here/benches/registry_big.py" "$out/big"
skopeo copy -q --dest-tls-verify=false "oci:$out/big:big" "docker://$reg/big:1"
rm -rf "$out/big" "$out/store" "$out/sk"
printf '  %-64s %s\n' "layercake pull $reg/big:1" "$(rss "$lc" --root "$out/store" pull "$reg/big:1")"
printf '  %-64s %s\n' "skopeo copy docker://… oci:DIR" "$(rss skopeo copy -q --src-tls-verify=false "docker://$reg/big:1" "oci:$out/sk:1")"

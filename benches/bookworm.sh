#!/usr/bin/env bash
# Builds the test images of the benchmarks from real tools (debootstrap, umoci, skopeo).
# Large data goes to the directory given, never into git.
#
#   bash benches/bookworm.sh [DIR]        (default /work/scratch-bench/bookworm)
#     DIR/rootfs/            debootstrap --variant=minbase bookworm (cached)
#     DIR/oci/               OCI layout, refs base, mid, latest sharing the base layer
#                              base   = one gzip layer: the whole rootfs (~200 MB tar)
#                              mid    = base + a layer adding files and deleting one (whiteout)
#                              latest = mid + a layer changing a few files
#     DIR/latest.tar         docker-archive of latest (skopeo)
#     DIR/latest-oci.tar     oci-archive of latest (skopeo)
#
#   bash benches/bookworm.sh --big [DIR]  (default /work/scratch-bench/big; needs ~13 GB free)
#     DIR/big/               OCI layout, ref big: one gzip layer holding a 4 GiB file of
#                              incompressible (AES-CTR) data and a few small files
#     DIR/big.tar            docker-archive of it (skopeo), the layer uncompressed
#
# Idempotent: every step is skipped when its output exists (steps build into *.partial and
# rename). Delete an output to rebuild it and whatever is made from it.
set -euo pipefail

say() { printf '== [%4ds] %s\n' "$SECONDS" "$*"; }
run() { printf '   $ %s\n' "$*"; "$@"; }
need() {
  local missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Bytes of a gzip blob once decompressed.
gunzipped_size() { gzip -dc "$1" | wc -c; }

# Blobs of a layout: digest, size, what it is, and for layers the uncompressed size and ratio.
report_layout() {
  local layout=$1
  say "layout $layout: $(du -sh "$layout" | cut -f1) ($(du -sb "$layout" | cut -f1) bytes)"
  printf '   %-71s %12s %12s %7s  %s\n' blob bytes uncompressed ratio kind
  local blob digest size magic usize
  for blob in "$layout"/blobs/sha256/*; do
    digest=sha256:$(basename "$blob")
    size=$(stat -c %s "$blob")
    magic=$(head -c 2 "$blob" | od -An -tx1 | tr -d ' \n')
    if [[ $magic == 1f8b ]]; then
      usize=$(gunzipped_size "$blob")
      printf '   %-71s %12d %12d %7.2f  %s\n' "$digest" "$size" "$usize" \
        "$(echo "$usize / $size" | bc -l)" 'layer (gzip)'
    else
      printf '   %-71s %12d %12s %7s  %s\n' "$digest" "$size" - - \
        "$(jq -r 'if .layers then "manifest" elif .rootfs then "config" else "?" end' "$blob")"
    fi
  done
  say "manifests of $layout"
  jq -r '.manifests[] | "   \(.annotations["org.opencontainers.image.ref.name"])\t\(.digest)\t\(.size) bytes"' \
    "$layout/index.json"
}

# Layer digests of one ref of a layout, one a line, bottom first.
layers_of() {
  local layout=$1 ref=$2 manifest
  manifest=$(jq -r --arg r "$ref" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
    "$layout/index.json")
  jq -r '.layers[].digest' "$layout/blobs/sha256/${manifest#sha256:}"
}

# skopeo copy into DEST (a file), through DEST.partial.
skopeo_to() {
  local src=$1 transport=$2 dest=$3 name=$4
  if [[ -e $dest ]]; then
    say "$dest exists: skipped"
    return
  fi
  say "skopeo copy $src -> $transport:$dest"
  rm -f "$dest.partial"
  run skopeo copy -q "$src" "$transport:$dest.partial:$name"
  mv "$dest.partial" "$dest"
}

build_bookworm() {
  local out=$1
  need debootstrap umoci skopeo jq bc
  mkdir -p "$out"
  cd "$out"

  # 1. The root filesystem, cached.
  if [[ -d rootfs ]]; then
    say "rootfs exists: skipped ($(du -sh rootfs | cut -f1))"
  else
    local mirror
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
    say "debootstrap minbase bookworm from $mirror"
    rm -rf rootfs.partial
    run debootstrap --variant=minbase bookworm rootfs.partial "$mirror" >debootstrap.log 2>&1 ||
      { tail -20 debootstrap.log; exit 1; }
    mv rootfs.partial rootfs
    rm -f latest.tar latest-oci.tar
    rm -rf oci
  fi

  # 2. The OCI layout: base, mid, latest.
  if [[ -d oci ]]; then
    say "oci exists: skipped"
  else
    rm -rf oci.partial bundle
    local L=oci.partial
    say "umoci: base = the whole rootfs in one layer"
    run umoci init --layout "$L"
    run umoci new --image "$L:base"
    run umoci config --image "$L:base" --config.cmd /bin/bash \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --history.created_by 'umoci config --config.cmd /bin/bash'
    run umoci unpack --image "$L:base" bundle >/dev/null
    run cp -a rootfs/. bundle/rootfs/
    run umoci repack --image "$L:base" \
      --history.created_by 'debootstrap --variant=minbase bookworm' bundle
    rm -rf bundle

    say "umoci: mid = base + a layer adding files and deleting /etc/issue.net"
    run umoci unpack --image "$L:base" bundle >/dev/null
    mkdir -p bundle/rootfs/opt/app/bin bundle/rootfs/opt/app/data
    cp -a rootfs/usr/bin/env bundle/rootfs/opt/app/bin/app
    printf 'name = app\nport = 8080\n' >bundle/rootfs/etc/app.conf
    printf '# app\nA demo application.\n' >bundle/rootfs/opt/app/README
    (openssl enc -aes-128-ctr -nosalt -pass pass:mid -pbkdf2 -in /dev/zero 2>/dev/null || true) |
      head -c $((2 << 20)) >bundle/rootfs/opt/app/data/blob.bin
    ln -s ../../../opt/app/bin/app bundle/rootfs/usr/local/bin/app
    rm bundle/rootfs/etc/issue.net
    run umoci repack --image "$L:mid" \
      --history.created_by 'add /opt/app, /etc/app.conf; rm /etc/issue.net' bundle
    rm -rf bundle

    say "umoci: latest = mid + a layer changing a few files"
    run umoci unpack --image "$L:mid" bundle >/dev/null
    printf 'name = app\nport = 9090\nlog = debug\n' >bundle/rootfs/etc/app.conf
    printf '# app\nA demo application, version 2.\n' >bundle/rootfs/opt/app/README
    echo bookworm-bench >bundle/rootfs/etc/hostname
    chmod 0700 bundle/rootfs/opt/app/bin/app # metadata only: a copy-up of the 48 KB file
    run umoci repack --image "$L:latest" \
      --history.created_by 'edit /etc/app.conf, /opt/app/README, /etc/hostname' bundle
    rm -rf bundle
    run umoci gc --layout "$L" # the configs and manifests that umoci new/config replaced
    mv "$L" oci
    rm -f latest.tar latest-oci.tar
  fi

  # The three refs share the base blob; mid and latest stack on it.
  local base mid latest
  base=$(layers_of oci base)
  mid=$(layers_of oci mid)
  latest=$(layers_of oci latest)
  [[ $(wc -l <<<"$base") == 1 && $(wc -l <<<"$mid") == 2 && $(wc -l <<<"$latest") == 3 ]] ||
    { echo "unexpected layer counts" >&2; exit 1; }
  [[ $(head -1 <<<"$mid") == "$base" && $(head -2 <<<"$latest") == "$mid" ]] ||
    { echo "refs do not share their lower layers" >&2; exit 1; }
  say "refs share the base layer $base"
  say "upper layers (mid, latest):"
  local layer
  for layer in $(tail -2 <<<"$latest"); do
    echo "   $layer"
    gzip -dc "oci/blobs/sha256/${layer#sha256:}" | tar -tvf - | sed 's/^/     /'
  done
  run oci-image-tool validate --type image oci

  # 3. The same image as a docker-archive and an oci-archive.
  skopeo_to oci:oci:latest docker-archive latest.tar bookworm:latest
  skopeo_to oci:oci:latest oci-archive latest-oci.tar latest

  report_layout oci
  say "archives"
  du -sh rootfs latest.tar latest-oci.tar | sed 's/^/   /'
}

build_big() {
  local out=$1
  need umoci skopeo jq bc openssl
  mkdir -p "$out"
  cd "$out"
  if [[ -d big && -e big.tar ]]; then
    say "big and big.tar exist: skipped"
  else
    local avail
    avail=$(df -B1 --output=avail . | tail -1)
    say "free space in $out: $((avail >> 20)) MiB"
    # 4 GiB blob + 4 GiB docker-archive + skopeo's staging copy of the layer, with room.
    if ((avail < 13 * (1 << 30))); then
      echo "not enough free space in $out: need ~13 GiB, have $((avail >> 20)) MiB" >&2
      exit 1
    fi
    if [[ ! -d big ]]; then
      rm -rf big.partial src big.tar
      say "payload: 4 GiB of AES-CTR keystream (incompressible, deterministic) + small files"
      mkdir -p src/payload src/etc src/opt/app
      (openssl enc -aes-128-ctr -nosalt -pass pass:layercake -pbkdf2 -in /dev/zero 2>/dev/null ||
        true) | head -c $((4 << 30)) >src/payload/random.bin
      echo big >src/etc/hostname
      printf '# big\nOne 4 GiB file of random bytes.\n' >src/opt/app/README
      printf 'name = big\n' >src/etc/app.conf
      ln -s ../payload/random.bin src/opt/app/data
      say "umoci raw add-layer (GNU tar streamed in, umoci gzips)"
      run umoci init --layout big.partial
      run umoci new --image big.partial:big
      run umoci raw add-layer --image big.partial:big \
        --history.created_by 'GNU tar: 4 GiB random file + small files' \
        <(tar -C src --sort=name --numeric-owner --owner=0 --group=0 --mtime=2024-01-01 \
          -cf - etc opt payload)
      rm -rf src
      run umoci gc --layout big.partial # the empty image of umoci new
      mv big.partial big
    fi
    skopeo_to oci:big:big docker-archive big.tar big:latest
  fi
  report_layout big
  say "archives"
  du -sh big.tar | sed 's/^/   /'
}

if [[ ${1:-} == --big ]]; then
  build_big "${2:-/work/scratch-bench/big}"
else
  build_bookworm "${1:-/work/scratch-bench/bookworm}"
fi
say "done in ${SECONDS}s"

#!/usr/bin/env bash
# `layercake build` side by side with Docker's classic builder (a private dockerd 20.10,
# DOCKER_BUILDKIT=0), in one run: ratios matter, not absolute times (shared, noisy machines).
# Peak RSS is each command's own (GNU time).
#
#   ten steps      a ten-step Dockerfile with five RUNs on a busybox base, --no-cache, both
#   rebuild        the same build again with nothing changed: time, and commands run (none)
#   one file       one context file changed: which steps each builder runs again
#   large base     a COPY and three RUNs on debootstrap's bookworm (~200 MB): time and peak RSS
#
# Usage: bash benches/build.sh [WORK]   (default /work/scratch-bench; the bookworm rootfs is
# built there by benches/bookworm.sh, once). Runs as root (dockerd; RUN's namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/work/scratch-bench}
source benches/lib.sh
need dockerd:docker.io hyperfine busybox:busybox-static skopeo
start_bench "$work"
D=$out/docker
mkdir -p "$D"
dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
  -H "unix://$D/docker.sock" --storage-driver vfs --iptables=false --bridge=none \
  >"$D/dockerd.log" 2>&1 &
dockerd_pid=$!
stop() {
  kill "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
  rm -rf "$out"
}
trap stop EXIT
export DOCKER_HOST="unix://$D/docker.sock" DOCKER_BUILDKIT=0
docker=/usr/bin/docker
until $docker version >/dev/null 2>&1; do sleep 0.2; done


# The busybox base, the same image in both: imported by Docker, saved, loaded by layercake.
root=$out/busybox
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
tar -C "$root" -cf "$out/busybox.tar" .
$docker import "$out/busybox.tar" busybox:bench >/dev/null
$docker save -o "$out/base.tar" busybox:bench
store=$out/store
"$lc" --root "$store" load -i "$out/base.tar" >/dev/null

ctx=$out/context
mkdir -p "$ctx/src"
for n in 1 2 3 4 5 6 7 8; do head -c 20000 /dev/urandom | base64 >"$ctx/src/file$n.txt"; done
echo 'mode=fast' >"$ctx/config.txt"
cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox:bench
ENV APP=/app
WORKDIR /app
COPY src/ /app/src/
RUN mkdir -p /app/out && echo built > /app/out/a
RUN for i in 1 2 3 4 5; do echo $i >> /app/out/n; done
COPY config.txt /app/
RUN cat /app/config.txt > /app/out/config
RUN rm -f /app/out/a
RUN ls -l /app/src > /app/out/listing
EOF
echo "== ten steps, five RUNs, on busybox: layercake build --no-cache vs docker build --no-cache (classic)"
hyperfine --warmup 1 --runs 5 --export-markdown "$out/ten.md" \
  -n 'layercake build --no-cache' "$lc --root $store build --no-cache -t bench:l $ctx" \
  -n 'docker build --no-cache (classic)' "$docker build -q --no-cache -t bench:d $ctx"
cat "$out/ten.md"
printf '  %-44s %s\n' "layercake build --no-cache" "$(rss "$lc" --root "$store" build --no-cache -t bench:l "$ctx")"
echo
echo "== rebuild, nothing changed"
"$lc" --root "$store" build -t bench:l "$ctx" >"$out/again.txt"
echo "  layercake: $(grep -c ' ---> Using cache' "$out/again.txt") of 9 steps from the cache, $(grep -c ' ---> Running in' "$out/again.txt") commands run"
hyperfine --warmup 2 --runs 20 -N --export-markdown "$out/again.md" \
  -n 'layercake build (cached)' "$lc --root $store build -t bench:l $ctx" \
  -n 'docker build (cached, classic)' "$docker build -q -t bench:d $ctx"
cat "$out/again.md"
echo
echo "== one context file changed (config.txt, step 7's COPY)"
echo 'mode=slow' >"$ctx/config.txt"
"$lc" --root "$store" build -t bench:l "$ctx" >"$out/one.txt"
$docker build -t bench:d "$ctx" >"$out/one-docker.txt"
for f in one one-docker; do
  ran=$(awk '/^Step /{step=$2} / ---> Running in/{print step}' "$out/$f.txt" | tr '\n' ' ')
  printf '  %-10s from the cache: %s steps; commands run at steps %s\n' "$f" "$(grep -c ' ---> Using cache' "$out/$f.txt")" "$ran"
done
echo
echo "== large base: COPY and three RUNs on bookworm (debootstrap minbase)"
bw=$out/bookworm-ctx
mkdir -p "$bw"
cp "$ctx/config.txt" "$bw/"
printf 'FROM bookworm:bench\nCOPY config.txt /etc/app.conf\nRUN dpkg -l > /var/tmp/packages\nRUN rm -rf /usr/share/doc\nRUN ls /usr/share > /var/tmp/share\n' >"$bw/Dockerfile"
skopeo copy -q "oci:$work/bookworm/oci:base" "docker-archive:$out/bookworm.tar:bookworm:bench"
$docker load -q -i "$out/bookworm.tar" >/dev/null
"$lc" --root "$store" load -i "$out/bookworm.tar" >/dev/null
printf '  %-44s %s\n' "layercake build --no-cache" "$(rss "$lc" --root "$store" build --no-cache -t big:l "$bw")"
printf '  %-44s %s\n' "docker build --no-cache (client)" "$(rss "$docker" build -q --no-cache -t big:d "$bw")"
hyperfine --warmup 1 --runs 3 --export-markdown "$out/big.md" \
  -n 'layercake build --no-cache (bookworm)' "$lc --root $store build --no-cache -t big:l $bw" \
  -n 'docker build --no-cache (bookworm, classic)' "$docker build -q --no-cache -t big:d $bw"
cat "$out/big.md"
echo
echo "== the newest history rows of each (the same steps)"
"$lc" --root "$store" history --no-trunc bench:l | sed -n 1,4p
$docker history --no-trunc bench:d | sed -n 1,4p

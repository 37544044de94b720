#!/usr/bin/env bash
# Evidence for the decompression-ratio limit (see benches/RATIO.md): real and plausible layer
# tars, and zero bombs, through gzip and zstd, measured by benches/ratio.py.
#
#   bash benches/ratio.sh [DIR]     (default /work/scratch-bench/ratio; ~14 GB of tars, ~2 h)
#
# DIR/in/NAME.tar       the inputs (cached)            DIR/bombs/   the bombs (cached)
# DIR/results.jsonl     one line per input and codec (a line already there is not redone)
# Needs the rootfs of benches/bookworm.sh (run it first), python3 with `zstandard`.
# CODECS and INPUTS (space-separated names) restrict a run; ONLY_BOMBS=1 does the bombs only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-/work/scratch-bench/ratio}
rootfs=${ROOTFS:-/work/scratch-bench/bookworm/rootfs}
ratio="python3 $here/ratio.py --json"
mkdir -p "$dir/in" "$dir/bombs" "$dir/src"
cd "$dir"
touch results.jsonl
say() { printf '== [%5ds] %s\n' "$SECONDS" "$*"; }
python3 -c 'import zstandard' 2>/dev/null || pip install -q zstandard
[[ -d $rootfs ]] || { echo "no $rootfs: run benches/bookworm.sh first" >&2; exit 1; }

TAR=(tar --sort=name --numeric-owner -cf)

# One input tar, built by the rest of the arguments unless it exists.
input() {
  local name=$1
  shift
  [[ -e in/$name.tar ]] && return
  say "input $name"
  "$@" && mv "in/$name.tar.partial" "in/$name.tar"
}
tree() { "${TAR[@]}" "in/$1.tar.partial" -C "$2" .; }

gen_db() { # 200 MiB of 4 KiB pages: 10% (sparse), 5% (sparse95) or the first 10% (prealloc)
  # hold data (real bytes, from the /usr/share tar), the rest zeros
  python3 - "$1" "$2" <<'EOF'
import random, sys
mode, out = sys.argv[1], sys.argv[2]
src = open("in/usr-share.tar", "rb")
random.seed(1)
with open(out, "wb") as f:
    for i in range(51200):
        data = i < 5120 if mode == "prealloc" else random.random() < (0.05 if mode == "sparse95" else 0.1)
        f.write(src.read(4096) if data else bytes(4096))
EOF
}
gen_log() { # nginx-style access log, 256 MiB
  python3 - "$1" <<'EOF'
import random, sys
random.seed(2)
ips = [f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}" for _ in range(50)]
paths = [f"/api/v1/{random.choice(['users','orders','items','carts'])}/{random.randrange(10**6)}" for _ in range(200)]
uas = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0", "curl/7.88.1",
       "kube-probe/1.28", "python-requests/2.31.0", "Go-http-client/1.1"]
t, n, lines = 1704067200.0, 0, []
import time
with open(sys.argv[1], "w") as f:
    while n < 256 << 20:
        t += random.expovariate(50)
        ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
        line = (f'{random.choice(ips)} - - [{ts}] "{random.choice(["GET","GET","GET","POST"])} '
                f'{random.choice(paths)} HTTP/1.1" {random.choice([200]*20+[304,404,500])} '
                f'{random.randrange(100, 50000)} "-" "{random.choice(uas)}"\n')
        f.write(line)
        n += len(line)
    f.truncate(256 << 20)
EOF
}
gen_csv() { # 512 MiB of CSV rows: ids, timestamps, floats, categories
  python3 - "$1" <<'EOF'
import random, sys
random.seed(3)
cats = ["electronics", "books", "garden", "toys", "grocery", "clothing", "sports", "tools"]
cities = ["Berlin", "Paris", "Madrid", "Rome", "Lisbon", "Vienna", "Prague", "Warsaw", "Dublin"]
with open(sys.argv[1], "w") as f:
    f.write("id,ts,customer,category,city,quantity,price,discount,rating,sku\n")
    i, n = 0, 0
    while n < 512 << 20:
        i += 1
        row = (f"{i},2024-{random.randint(1,12):02d}-{random.randint(1,28):02d}T"
               f"{random.randint(0,23):02d}:{random.randint(0,59):02d}:{random.randint(0,59):02d}Z,"
               f"{random.randrange(10**6)},{random.choice(cats)},{random.choice(cities)},"
               f"{random.randint(1,20)},{random.uniform(1,500):.2f},{random.choice(['0','0','0.05','0.1'])},"
               f"{random.randint(1,5)},SKU-{random.randrange(16**8):08X}\n")
        f.write(row)
        n += len(row)
EOF
}
gen_json() { # 256 MiB of JSON lines (API-dump-like records with repeated keys)
  python3 - "$1" <<'EOF'
import json, random, sys
random.seed(4)
tags = ["alpha", "beta", "gamma", "delta", "prod", "staging", "eu-west-1", "us-east-1"]
with open(sys.argv[1], "w") as f:
    i, n = 0, 0
    while n < 256 << 20:
        i += 1
        rec = {"id": i, "uuid": "%032x" % random.getrandbits(128), "name": f"user{random.randrange(10**5)}",
               "email": f"user{random.randrange(10**5)}@example.com", "active": random.random() < 0.8,
               "score": round(random.gauss(50, 15), 3), "tags": random.sample(tags, 3),
               "address": {"city": random.choice(["Berlin", "Paris", "Oslo"]), "zip": f"{random.randrange(10**5):05d}"},
               "created": f"2023-{random.randint(1,12):02d}-{random.randint(1,28):02d}T00:00:00Z"}
        s = json.dumps(rec) + "\n"
        f.write(s)
        n += len(s)
EOF
}
gen_same() { # one log line, again and again (a container stuck in a retry loop), 256 MiB
  (yes 'WARN waiting for database at db:5432 (connection refused)' || true) | head -c $((256 << 20)) >"$1"
}
# A tar holding one generated file: NAME FILE GENERATOR [ARGS...]
single() {
  local name=$1 file=$2
  shift 2
  [[ -e in/$name.tar ]] && return
  say "input $name"
  "$@" "src/z/$file"
  "${TAR[@]}" "in/$name.tar.partial" -C src/z "$file" && mv "in/$name.tar.partial" "in/$name.tar"
  rm -f "src/z/$file"
}
# The layer of `RUN useradd -u 2000000 -m app` on the rootfs, as the useradd of older
# distributions writes it: /var/log/lastlog and /var/log/faillog grow (sparse, all zeros) to
# (uid+1)*292 and (uid+1)*32 bytes, and Docker stores them in full (moby/moby#5419, hadolint
# DL3046). Bookworm's useradd (shadow 4.13) leaves them alone here, so they are extended by hand.
gen_useradd() {
  local uid=2000000
  rm -rf src/useradd && mkdir -p src/useradd
  cp -a "$rootfs" src/useradd/root
  touch src/useradd/stamp
  sleep 1
  chroot src/useradd/root useradd -u $uid -m app 2>/dev/null
  truncate -s $(((uid + 1) * 292)) src/useradd/root/var/log/lastlog
  truncate -s $(((uid + 1) * 32)) src/useradd/root/var/log/faillog
  (cd src/useradd/root && find . -cnewer ../stamp ! -path ./proc ! -path ./dev | sort) >src/useradd/list
  "${TAR[@]}" "in/$1.tar.partial" -C src/useradd/root --no-recursion -T src/useradd/list
  rm -rf src/useradd
}

make_inputs() {
  say "inputs in $dir/in"
  # Real trees.
  input bookworm-rootfs tree bookworm-rootfs "$rootfs"
  input usr-lib tree usr-lib /usr/lib
  input usr-share tree usr-share /usr/share
  input usr-bin tree usr-bin /usr/bin
  input usr-include tree usr-include /usr/include
  input usr-share-doc tree usr-share-doc /usr/share/doc
  input usr-share-man tree usr-share-man /usr/share/man
  input usr-share-locale tree usr-share-locale /usr/share/locale
  input var-lib-dpkg tree var-lib-dpkg /var/lib/dpkg
  input rustup tree rustup "$HOME/.rustup"
  input python-3.11 tree python-3.11 "$HOME/.pyenv/versions/3.11.7"
  if [[ ! -e in/node-modules.tar ]]; then
    mkdir -p src/node
    (cd src/node && [[ -d node_modules ]] || { npm init -y >/dev/null &&
      npm install --no-audit --no-fund typescript webpack webpack-cli @babel/core eslint \
        react react-dom next lodash moment >npm.log; })
    input node-modules tree node-modules src/node/node_modules
  fi
  if [[ ! -e in/locales-all.tar ]]; then
    mkdir -p src/locales
    (cd src/locales && [[ -d root ]] || { apt-get download locales-all 2>/dev/null &&
      dpkg-deb -x locales-all_*.deb root; })
    input locales-all tree locales-all src/locales/root/usr/lib/locale
  fi
  # Plausible edge content. Zero files are sparse on disk; GNU tar (like Docker) stores them
  # in full.
  mkdir -p src/z
  truncate -s 256M src/z/00-disk.img src/z/zz-disk.img
  truncate -s 1G src/z/zeros.img
  input rootfs+zeros256-first "${TAR[@]}" in/rootfs+zeros256-first.tar.partial \
    -C src/z 00-disk.img -C "$rootfs" .
  input rootfs+zeros256-last "${TAR[@]}" in/rootfs+zeros256-last.tar.partial \
    -C "$rootfs" . -C "$dir/src/z" zz-disk.img
  input zeros-1g "${TAR[@]}" in/zeros-1g.tar.partial -C src/z zeros.img
  input useradd-lastlog gen_useradd useradd-lastlog
  single db-sparse-200m db-sparse.db gen_db sparse
  single db-prealloc-200m db-prealloc.db gen_db prealloc
  single db-sparse95-200m db-sparse95.db gen_db sparse95
  single log-256m access.log gen_log
  single log-one-line-256m same.log gen_same
  single csv-512m data.csv gen_csv
  single json-256m data.jsonl gen_json
  rm -rf src/z
  ls -l in | sed 's/^/   /'
}

# One measurement: NAME CODEC (e.g. gzip-6) TAR, or NAME CODEC --blob BLOB (already compressed).
measure() {
  local name=$1 codec=$2 t0 line
  shift 2
  grep -qF "{\"name\":\"$name\",\"codec\":\"$codec\"," results.jsonl && return
  say "$name $codec"
  t0=$(date +%s.%N)
  if [[ $1 == --blob ]]; then
    line=$($ratio --name "$name" "$2")
  else
    line=$(nice "${codec%-*}" "-${codec##*-}" -c -q "$1" | $ratio --name "$name" -)
  fi
  line=$(jq -c --arg c "$codec" --arg s "$(echo "$(date +%s.%N) - $t0" | bc)" \
    '.name as $n | del(.name, .codec) | {name: $n, codec: $c, seconds: ($s | tonumber)} + .' <<<"$line")
  echo "$line" | tee -a results.jsonl | sed 's/^/   /'
}

bombs() {
  for codec in gzip-1 gzip-6 gzip-9 zstd-1 zstd-3 zstd-19; do
    local prog=${codec%-*} level=${codec##*-}
    local f=bombs/zeros-8g.${prog/gzip/gz}$level
    f=${f/zstd/zst}
    [[ -e $f ]] || { say "bomb $f"; head -c 8G /dev/zero | nice "$prog" "-$level" -c -q >"$f.partial" &&
      mv "$f.partial" "$f"; }
    measure bomb-zeros-8g "$codec" --blob "$f"
  done
}

bombs
[[ ${ONLY_BOMBS:-} == 1 ]] && exit 0
make_inputs
names=${INPUTS:-$(cd in && ls -S -r *.tar | sed 's/\.tar$//')} # smallest first
for codec in ${CODECS:-gzip-6 zstd-3 gzip-9 zstd-19}; do
  for name in $names; do measure "$name" "$codec" "in/$name.tar"; done
done
say "done"

#!/usr/bin/env python3
"""Decompression ratio of a gzip or zstd stream, overall and as a reader sees it.

    python3 benches/ratio.py [--name NAME] [--json] FILE|-      (e.g. `gzip -6 <x.tar | ratio.py -`)
    python3 benches/ratio.py --table results.jsonl              (markdown tables of the results)

Decompresses the stream (gzip, multi-member; or zstd, multi-frame) and counts the compressed
bytes the decoder has consumed when each output byte comes out. Reports:

  in, out        compressed and uncompressed bytes
  overall        out/in at the end (what a check against the whole blob's length sees)
  max_cum        the largest cumulative out/in sampled at every 1 MiB of output once output
                 >= the floor (64 MiB), and at the end: what a streaming check sees
  at             output offset (MiB) of that maximum
  first>R        for R in 100, 256, 512, 1024: the output offset (MiB) at which a streaming
                 check with limit R and the floor would refuse the stream, or '-' if never
  max_cum_F      (with --floors) max_cum had the floor been F MiB, for F = 128, 256, 512

gzip is measured exactly (zlib with max_length: output stops at each 1 MiB boundary and the
consumed input is what zlib took). zstd produces a block (up to 128 KiB out) only once the
whole compressed block is in, so input is fed in 1 KiB steps and each sample is taken at the
end of the step that crosses a boundary: in is then what a reader must have read.
"""
import argparse
import json
import sys
import zlib

MIB = 1 << 20
FLOOR = 64 * MIB
LIMITS = (100, 256, 512, 1024)
FLOORS = (128, 256, 512)


class Meter:
    def __init__(self, floor=FLOOR, step=MIB):
        self.floor, self.step = floor, step
        self.inn = self.out = 0
        self.next = floor
        self.max_cum, self.max_at = 0.0, None
        self.by_floor = {f: None for f in FLOORS}
        self.first = {r: None for r in LIMITS}

    def sample(self):
        ratio = self.out / max(self.inn, 1)
        if ratio > self.max_cum:
            self.max_cum, self.max_at = ratio, self.out
        for f in FLOORS:
            if self.out >= f * MIB and (self.by_floor[f] is None or ratio > self.by_floor[f]):
                self.by_floor[f] = ratio
        for r in LIMITS:
            if self.first[r] is None and ratio > r:
                self.first[r] = self.out

    def advance(self, consumed, produced):
        """Counts one step; samples when output crossed a 1 MiB boundary past the floor."""
        self.inn += consumed
        self.out += produced
        if self.out >= self.next:
            self.sample()
            self.next = (self.out // self.step + 1) * self.step

    def finish(self):
        if self.out >= self.floor:
            self.sample()


def measure_gzip(f, m, chunk=1 << 16):
    d = zlib.decompressobj(wbits=31)
    buf = b""
    while True:
        if not buf:
            buf = f.read(chunk)
            if not buf:
                break
        if d.eof:  # next gzip member
            d = zlib.decompressobj(wbits=31)
        # Stop output exactly at the next 1 MiB boundary (or the floor).
        room = m.next - m.out
        out = d.decompress(buf, room)
        rest = d.unconsumed_tail if d.unconsumed_tail else d.unused_data
        m.advance(len(buf) - len(rest), len(out))
        buf = rest
    if not d.eof:
        raise SystemExit("truncated gzip stream")


def measure_zstd(f, m, step=1024):
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    while True:
        data = f.read(1 << 16)
        if not data:
            break
        view = memoryview(data)
        for i in range(0, len(view), step):
            piece = bytes(view[i : i + step])
            while piece:
                if d.eof:
                    d = dctx.decompressobj()
                out = d.decompress(piece)
                rest = d.unused_data if d.eof else b""
                m.advance(len(piece) - len(rest), len(out))
                piece = rest


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    codecs = ["gzip-6", "gzip-9", "zstd-3", "zstd-19"]
    by = {(r["name"], r["codec"]): r for r in rows}
    names = sorted({r["name"] for r in rows if not r["name"].startswith("bomb")},
                   key=lambda n: by.get((n, "gzip-6"), {"out": 0})["out"])
    cell = lambda r: "" if r is None else (
        f"{r['overall']:g} / " + ("–" if r["max_cum"] is None else f"{r['max_cum']:g}"))
    print("| input | tar MiB | " + " | ".join(codecs) + " |")
    print("|---|--:|" + "--:|" * len(codecs))
    for n in names:
        any_r = next(by[(n, c)] for c in codecs if (n, c) in by)
        print(f"| {n} | {any_r['out'] / MIB:.0f} | " + " | ".join(cell(by.get((n, c))) for c in codecs) + " |")
    print()
    print("| bomb: 8 GiB of zeros | blob bytes | ratio | streaming check, any limit below the ratio: "
          "refused at MiB of output | whole-blob check: output before refusal, limit 1024 / 128 |")
    print("|---|--:|--:|--:|--:|")
    for r in rows:
        if r["name"].startswith("bomb"):
            whole = lambda lim: (f"{min(r['in'] * lim, 16 << 30) / MIB:.0f} MiB" if r["overall"] > lim
                                 else "passes")
            print(f"| {r['codec']} | {r['in']} | {r['overall']:g} | {r['first>100_mib']} | "
                  f"{whole(1024)} / {whole(128)} |")
    print()
    print("| limit | not a bomb, refused by a streaming check (max cumulative > limit) | "
          "refused by a whole-blob check (overall > limit) | bombs let through |")
    print("|--:|---|---|---|")

    def group(pred):
        out = {}
        for r in rows:
            if not r["name"].startswith("bomb") and pred(r):
                out.setdefault(r["name"], []).append(r["codec"])
        return "; ".join(f"{n} ({', '.join(c)})" for n, c in out.items()) or "–"

    for lim in (100, 128, 256, 512, 1024):
        cum = group(lambda r: r["max_cum"] and r["max_cum"] > lim)
        whole = group(lambda r: r["out"] > FLOOR and r["overall"] > lim)
        through = ", ".join(r["codec"] for r in rows if r["name"].startswith("bomb") and r["overall"] <= lim)
        print(f"| {lim} | {cum} | {whole} | {through or '–'} |")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        return table(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--name", default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--floors", action="store_true")
    a = ap.parse_args()
    f = sys.stdin.buffer if a.file == "-" else open(a.file, "rb")
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""
    m = Meter()
    if head[:2] == b"\x1f\x8b":
        codec = "gzip"
        measure_gzip(f, m)
    elif head == b"\x28\xb5\x2f\xfd":
        codec = "zstd"
        measure_zstd(f, m)
    else:
        raise SystemExit(f"not gzip or zstd: {head!r}")
    m.finish()
    r = {
        "name": a.name or a.file,
        "codec": codec,
        "in": m.inn,
        "out": m.out,
        "overall": round(m.out / max(m.inn, 1), 2),
        "max_cum": round(m.max_cum, 2) if m.max_at else None,
        "at_mib": round(m.max_at / MIB) if m.max_at else None,
    }
    for lim in LIMITS:
        r[f"first>{lim}_mib"] = round(m.first[lim] / MIB) if m.first[lim] else None
    if a.floors:
        for f in FLOORS:
            r[f"max_cum_{f}"] = None if m.by_floor[f] is None else round(m.by_floor[f], 2)
    if a.json:
        print(json.dumps(r))
    else:
        fmt = lambda v: "-" if v is None else str(v)
        print(" ".join(f"{k}={fmt(v)}" for k, v in r.items()))


if __name__ == "__main__":
    main()

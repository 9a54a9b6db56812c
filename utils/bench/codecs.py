#!/usr/bin/env python
"""Which codec seals a series: candidate libraries on realistic 1,440-point series.

The data is what ``utils/bench/store.py --only steady`` stores: every NAB series
long enough (``shared/nab``), counters, gauges with 0-3 decimals, and
full-precision noise, one point a minute.  For each candidate: bytes per point
(timestamps and values together), and per series the CPU time to encode and to
decode (best of ``--reps``), after checking that decoding gives back the exact
timestamps and bit-identical values.

Candidates (each is measured when its library is importable, else reported as
missing; only pcodec is a Skyline dependency):

* pcodec (``pcodec``), levels 4 and 8, timestamps and values each a standalone file;
* zstd over delta-encoded columns (``zstandard``): delta-of-delta timestamps and
  XOR-with-previous values, both byte-shuffled, zstd level 3 and 9;
* blosc2 (``blosc2``): DELTA + SHUFFLE filters, zstd level 9;
* Gorilla (``gorillacompression``, pure Python): delta-of-delta timestamps and XOR
  values as in the Gorilla paper.

    python utils/bench/codecs.py [--metrics 200] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_steady import KINDS, nab_values, realistic_values  # noqa: E402

POINTS = 1440
Encoded = Any
Codec = tuple[Callable[[np.ndarray, np.ndarray], Encoded], Callable[[Encoded], tuple]]


def _lib(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def pcodec_codec(level: int) -> Codec | None:
    pc = _lib("pcodec")
    if pc is None:
        return None
    cfg = pc.ChunkConfig(compression_level=level)
    sa = pc.standalone

    def enc(t: np.ndarray, v: np.ndarray) -> Encoded:
        return sa.simple_compress(t, cfg), sa.simple_compress(v, cfg)

    return enc, lambda e: (sa.simple_decompress(e[0]), sa.simple_decompress(e[1]))


def _shuffle(a: np.ndarray) -> bytes:
    return a.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.uint8).reshape(8, -1).T.copy().view(np.int64).ravel()


def zstd_codec(level: int) -> Codec | None:
    zs = _lib("zstandard")
    if zs is None:
        return None
    comp, dec = zs.ZstdCompressor(level=level), zs.ZstdDecompressor()

    def enc(t: np.ndarray, v: np.ndarray) -> Encoded:
        dod = np.diff(np.diff(t, prepend=0), prepend=0)
        bits = v.view(np.int64)
        xor = bits ^ np.concatenate(([0], bits[:-1]))
        return comp.compress(_shuffle(dod)), comp.compress(_shuffle(xor))

    def decode(e: Encoded) -> tuple:
        t = np.cumsum(np.cumsum(_unshuffle(dec.decompress(e[0]))))
        return t, np.bitwise_xor.accumulate(_unshuffle(dec.decompress(e[1]))).view(np.float64)

    return enc, decode


def blosc2_codec() -> Codec | None:
    b2 = _lib("blosc2")
    if b2 is None:
        return None
    f = [b2.Filter.DELTA, b2.Filter.SHUFFLE]

    def enc(t: np.ndarray, v: np.ndarray) -> Encoded:
        kw = {"typesize": 8, "filters": f, "codec": b2.Codec.ZSTD, "clevel": 9}
        return b2.compress2(t.tobytes(), **kw), b2.compress2(v.tobytes(), **kw)

    return enc, lambda e: (
        np.frombuffer(b2.decompress2(e[0]), np.int64),
        np.frombuffer(b2.decompress2(e[1]), np.float64),
    )


def gorilla_codec() -> Codec | None:
    g = _lib("gorillacompression")
    if g is None:
        return None

    def enc(t: np.ndarray, v: np.ndarray) -> Encoded:
        return g.TimestampsEncoder.encode_all(t.tolist()), g.ValuesEncoder.encode_all(v.tolist())

    def decode(e: Encoded) -> tuple:
        t = g.TimestampsDecoder.decode_all(e[0])
        return np.array(t, np.int64), np.array(g.ValuesDecoder.decode_all(e[1]), np.float64)

    return enc, decode


def _size(e: Encoded) -> int:
    return sum(len(x["encoded"]) if isinstance(x, dict) else len(x) for x in e)


CANDIDATES: dict[str, Callable[[], Codec | None]] = {
    "pcodec level 4 (chosen)": lambda: pcodec_codec(4),
    "pcodec level 8": lambda: pcodec_codec(8),
    "zstd 3, delta-of-delta t + XOR v, shuffled": lambda: zstd_codec(3),
    "zstd 9, delta-of-delta t + XOR v, shuffled": lambda: zstd_codec(9),
    "blosc2 zstd 9, DELTA + SHUFFLE": blosc2_codec,
    "Gorilla (gorillacompression, pure Python)": gorilla_codec,
}


def dataset(metrics: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    nab = nab_values(POINTS)
    t = 1_800_000_000 + 60 * np.arange(POINTS, dtype=np.int64)
    out = []
    for i in range(metrics):
        kind = KINDS[i % len(KINDS)]
        out.append((kind, t, realistic_values(kind, i, POINTS, nab, seed)))
    return out


def cpu_us(fn: Callable[[], object], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best * 1e6


def measure(codec: Codec, data: list, reps: int) -> dict[str, float]:
    enc, dec = codec
    blobs = [enc(t, v) for _, t, v in data]
    sizes: dict[str, list[float]] = {k: [] for k in KINDS}
    for (kind, t, v), e in zip(data, blobs, strict=True):
        tt, vv = dec(e)
        if not (np.array_equal(tt, t) and np.array_equal(vv.view(np.int64), v.view(np.int64))):
            raise SystemExit("a candidate did not give back the exact series")
        sizes[kind].append(_size(e) / POINTS)
    out = {k: float(np.mean(s)) for k, s in sizes.items() if s}
    out["realistic"] = float(np.mean([x for k in KINDS if k != "noise" for x in sizes[k]]))
    out["encode_us"] = cpu_us(lambda: [enc(t, v) for _, t, v in data], reps) / len(data)
    out["decode_us"] = cpu_us(lambda: [dec(e) for e in blobs], reps) / len(data)
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", type=int, default=200)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    data = dataset(args.metrics, args.seed)
    results: dict[str, dict[str, float] | None] = {}
    cols = (*KINDS, "realistic", "encode_us", "decode_us")
    print(f"{'codec':<46}" + "".join(f"{c:>11}" for c in cols))
    for name, make in CANDIDATES.items():
        codec = make()
        results[name] = measure(codec, data, args.reps) if codec else None
        row = results[name]
        cells = "".join(f"{row[c]:>11.2f}" for c in cols) if row else "  not installed"
        print(f"{name:<46}{cells}")
    if args.json:
        print(json.dumps({"metrics": args.metrics, "results": results}, sort_keys=True))
    return results


if __name__ == "__main__":
    main()

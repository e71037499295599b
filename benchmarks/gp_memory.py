"""Peak memory of GP fitting over 100,000 real ZTF alert light curves, streamed in chunks.

Each mode runs in a fresh process and reports its peak RSS (``ru_maxrss``): the light
curves alone, then ``iter_fit_gp`` over them (results dropped as they come, as a
classifier does).  Writes ``benchmarks/results/gp_memory.json``.

Usage: python -m benchmarks.gp_memory [--n 100000] [--chunk-size 8192]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.common import REPO, write_result

CHILD = """
import json, resource, sys, time
import numpy as np
from benchmarks.common import real_ztf_alerts
from astrot2.gp import iter_fit_gp
from astrot2.lightcurves import LightCurveBatch
n, chunk, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = real_ztf_alerts()
batch = LightCurveBatch.concat([base] * (n // len(base) + 1)).take(np.arange(n))
start = time.perf_counter()
done = 0
if mode == "fit":
    for _, res in iter_fit_gp(batch, chunk_size=chunk):
        done += len(res.status)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"light_curves": n, "fitted": done, "peak_rss_mb": rss_mb,
                  "seconds": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=8192)
    args = parser.parse_args()
    out = {}
    for mode in ("read_only", "fit"):
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.n), str(args.chunk_size),
                               mode], capture_output=True, text=True, check=True, cwd=REPO)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(mode, out[mode])
    out["gp_extra_peak_mb"] = out["fit"]["peak_rss_mb"] - out["read_only"]["peak_rss_mb"]
    out["chunk_size"] = args.chunk_size
    print("wrote", write_result("gp_memory", out))


if __name__ == "__main__":
    main()

"""GP throughput of the installed build of ``astrot2._gpcore``: portable or native.

Build one way, run, rebuild the other way, run again::

    pip install --no-build-isolation --no-deps -e .                 # portable (default)
    python -m benchmarks.gp_build
    ASTROT2_NATIVE=1 pip install --no-build-isolation --no-deps -e .
    python -m benchmarks.gp_build --build native

For real ZTF alerts (x ``--copies``) and ``--plasticc`` PLAsTiCC training objects:
``fit_gp`` light curves/s on 1 thread (median of ``--repeats`` runs), and the fitted log
likelihoods; the second run compares its likelihoods and grid means with the first's.
Writes ``benchmarks/results/gp_build-BUILD.json``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from astrot2.gp import GPConfig, fit_gp
from astrot2.lightcurves import LightCurveBatch
from benchmarks.common import (
    RESULTS,
    median_time,
    plasticc_objects,
    real_ztf_alerts,
    write_result,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", choices=("portable", "native"), default="portable")
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--plasticc", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    other = RESULTS / f"gp_build-{'native' if args.build == 'portable' else 'portable'}.json"
    previous = json.loads(other.read_text()) if other.is_file() else None
    out: dict[str, object] = {"build": args.build, "command": (
        f"python -m benchmarks.gp_build --build {args.build} --copies {args.copies} "
        f"--plasticc {args.plasticc} --repeats {args.repeats}")}
    for name, batch, copies in (("ztf", real_ztf_alerts(), args.copies),
                                ("plasticc", plasticc_objects(args.plasticc), 1)):
        big = LightCurveBatch.concat([batch] * copies) if copies > 1 else batch
        fit_gp(batch.take(np.arange(50)), n_threads=1)  # warm-up
        seconds, times = median_time(lambda b=big: fit_gp(b, n_threads=1), args.repeats)
        res = fit_gp(batch, GPConfig(), n_threads=1)
        row = {"light_curves": len(big), "objects_per_s_1_thread": len(big) / seconds,
               "times_s": times, "log_likelihood": res.log_likelihood.tolist(),
               "grid_mean_checksum": float(np.nansum(np.abs(res.mean)))}
        if previous is not None:
            before = np.array(previous[name]["log_likelihood"])
            row["vs_other_build"] = {
                "max_abs_log_likelihood_diff": float(np.nanmax(np.abs(res.log_likelihood
                                                                      - before))),
                "max_rel_log_likelihood_diff": float(np.nanmax(
                    np.abs(res.log_likelihood - before) / np.abs(before))),
                "throughput_ratio_this_over_other": row["objects_per_s_1_thread"]
                / previous[name]["objects_per_s_1_thread"]}
        print(name, {k: v for k, v in row.items() if k not in ("times_s", "log_likelihood")})
        out[name] = row
    print("wrote", write_result(f"gp_build-{args.build}", out))


if __name__ == "__main__":
    main()

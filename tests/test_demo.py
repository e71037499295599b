"""``make demo``: the main job on the bundled real ZTF alerts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from astrot2.classes import CLASSES
from astrot2.demo import demo_alerts_dir, main
from astrot2.io import read_alerts


def test_demo_classifies_every_bundled_alert(ztf_model, tmp_path, capsys):
    """One output row per bundled alert, a summary, a per-class table and a figure."""
    assert main(["--out", str(tmp_path), "--model", str(ztf_model)]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[: out.index("}\n") + 1])
    n = len(read_alerts(demo_alerts_dir()))
    assert summary["alerts_in"] == n == pq.read_table(tmp_path / "demo_classified.parquet") \
        .num_rows
    table_lines = [line for line in out.splitlines() if line.startswith(("SNIa ", "AGN "))]
    assert len(table_lines) == 2
    names = {c.name for c in CLASSES} | {"rejected"}
    counts = [int(line.split()[1]) for line in out.splitlines()
              if line.split() and line.split()[0] in names]
    assert len(counts) == len(CLASSES) + 1 and sum(counts) == n  # every alert counted once
    assert (tmp_path / "demo_gp_fits.png").stat().st_size > 20_000


def test_figure_axes_show_the_data_not_the_gp():
    """The flux axis spans the points (errors, non-detections, zero) plus a margin, however
    far the GP strays; one band palette for every figure (g green, r red)."""
    import numpy as np

    from astrot2.explain import BAND_COLOURS as explain_colours
    from astrot2.lightcurves import LightCurveBatch
    from astrot2.plotting import BAND_COLOURS, flux_limits
    from astrot2.surveys import ZTF

    batch = LightCurveBatch.from_observations(
        ZTF, ["a"], ["a"], np.zeros(4, int), [0.0, 1.0, 2.0, 3.0],
        [1e5, 5e4, -2e4, 0.0], [1e3, 1e3, 1e3, 3e3], [0, 1, 1, 0],
        np.array([True, True, True, False]))
    lo, hi = flux_limits(batch[0])
    span = (1e5 + 1e3) - (-2e4 - 1e3)
    assert (lo, hi) == pytest.approx((-2.1e4 - 0.12 * span, 1.01e5 + 0.12 * span), rel=1e-12)
    assert explain_colours is BAND_COLOURS
    assert (BAND_COLOURS["g"], BAND_COLOURS["r"]) == ("tab:green", "tab:red")


def test_figure_shows_one_alert_per_class_first():
    import numpy as np

    from astrot2.demo import _one_per_class
    from astrot2.lightcurves import LightCurveBatch
    from astrot2.surveys import ZTF

    # 4 light curves with 4, 3, 2, 1 detections; top classes AGN, AGN, SNIa, rejected
    owner = np.repeat(np.arange(4), [4, 3, 2, 1])
    batch = LightCurveBatch.from_observations(
        ZTF, list("abcd"), list("abcd"), owner, np.arange(10.0), np.ones(10), np.ones(10),
        np.zeros(10, int), np.ones(10, bool))
    assert _one_per_class(batch, ["AGN", "AGN", "SNIa", None], 3) == [0, 2, 1]

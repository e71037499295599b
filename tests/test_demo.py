"""``make demo``: the main job on the bundled real ZTF alerts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

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

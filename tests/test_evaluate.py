"""``astrot2 evaluate``: shipped models reproduce their stored held-out metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astrot2.cli import main
from astrot2.runtime import shipped_models


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(shipped_models())
                         + [f"{n}+companion" for n, folder in sorted(shipped_models().items())
                            if (folder / "companion.onnx").is_file()])
def test_shipped_model_reproduces_its_metrics(name, shared_data, tmp_path, capsys,
                                              monkeypatch):
    """``astrot2 evaluate --model NAME`` gives the manifest's figures (whole and windows);
    so does ``NAME+companion`` with the companion section's own figures."""
    monkeypatch.setenv("ASTROT2_DATA", str(shared_data))
    out = tmp_path / "report"
    assert main(["evaluate", "--model", name, "-o", str(out), "--data",
                 str(tmp_path / "cache")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_objects"] > 1000
    for key in ("whole", "alert_windows"):
        assert abs(summary["difference_vs_manifest"][key]) < 1e-3
        assert (out / f"confusion-{key}.png").stat().st_size > 10_000
    report = json.loads((out / "report.json").read_text())
    counts = np.array(report["whole"]["confusion_matrix"]["counts"])
    assert counts.sum() == summary["n_objects"]

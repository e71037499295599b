"""Figures for people (matplotlib, imported lazily): light curves with their GP fits,
reliability diagrams and risk-coverage curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from astrot2.gp import GPResult
from astrot2.lightcurves import LightCurveBatch
from astrot2.metrics import N_BINS, expected_calibration_error, reliability, softmax

__all__ = ["BAND_COLOURS", "FLUX_LABEL", "flux_limits", "plot_gp_fits", "plot_reliability",
           "plot_risk_coverage", "save_figure"]

#: Band colours by band name, blue to red, for both surveys (every figure of astrot2).
BAND_COLOURS = {"u": "tab:purple", "g": "tab:green", "r": "tab:red", "i": "tab:orange",
                "z": "tab:brown", "y": "black"}
#: The flux axis of every light-curve figure: alert photometry is difference-image flux.
FLUX_LABEL = "difference flux (FLUXCAL: ZP 27.5)"
#: Days of GP drawn beyond a light curve's first and last points.
GP_MARGIN_DAYS = 5.0


def flux_limits(lc) -> tuple[float, float]:
    """Flux axis limits that show the data: detections with their errors, the
    non-detections and zero, plus 12 %; the GP is clipped to them (away from the data its
    mean and band can reach far beyond)."""
    det = lc.detected
    values = np.concatenate([lc.flux[det] + lc.flux_err[det], lc.flux[det] - lc.flux_err[det],
                             lc.flux[~det], [0.0]])
    lo, hi = float(values.min()), float(values.max())
    pad = 0.12 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def plot_gp_fits(
    batch: LightCurveBatch,
    result: GPResult,
    indices: Sequence[int],
    path: str | Path,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw observed points and the GP mean +/- 1 std of several light curves.

    The GP is drawn from ``GP_MARGIN_DAYS`` before the first point to as many after the
    last, on a flux axis fitted to the data (:func:`flux_limits`).

    Parameters
    ----------
    batch : LightCurveBatch
    result : GPResult
        ``fit_gp(batch)``.
    indices : sequence of int
        Light curves to draw, one panel each.
    path : str or Path
        PNG file to write.
    titles : sequence of str, optional
        One title per panel (default: alert and object ids).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = len(indices)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, k, i in zip(axes.flat, range(n), indices, strict=False):
        lc = batch[i]
        t0 = lc.time.min()
        x = result.times[i] - t0
        near = (x >= -GP_MARGIN_DAYS) & (x <= lc.time.max() - t0 + GP_MARGIN_DAYS)
        handles = []
        for b, name in enumerate(batch.survey.bands):
            colour = BAND_COLOURS.get(name, "grey")
            sel = lc.band == b
            if not sel.any():
                continue
            det, lim = sel & lc.detected, sel & ~lc.detected
            ax.errorbar(lc.time[det] - t0, lc.flux[det], lc.flux_err[det], fmt="o", ms=3,
                        color=colour, zorder=3)
            ax.errorbar(lc.time[lim] - t0, lc.flux[lim], lc.flux_err[lim], fmt="v", ms=4,
                        mfc="white", color=colour, alpha=0.6, zorder=3)
            mu, sd = result.mean[i, near, b], result.std[i, near, b]
            ax.plot(x[near], mu, color=colour, lw=1.2)
            ax.fill_between(x[near], mu - sd, mu + sd, color=colour, alpha=0.15, lw=0)
            handles.append(Line2D([], [], color=colour, marker="o", ms=3, label=name))
        handles += [Line2D([], [], color="grey", lw=1.2, label="GP mean"),
                    Patch(color="grey", alpha=0.3, lw=0, label="GP ±1σ"),
                    Line2D([], [], color="grey", marker="v", mfc="white", ls="none",
                           label="non-detection (upper limit)")]
        ax.set_ylim(*flux_limits(lc))
        ax.axhline(0, color="grey", lw=0.6)
        title = titles[k] if titles is not None else f"{lc.object_id} ({lc.alert_id})"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"days since MJD {t0:.1f} (first point)")
        ax.set_ylabel(FLUX_LABEL)
        ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (110 dpi; folders made) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], temperature: float,
                     path: str | Path, title: str = "", n_bins: int = N_BINS) -> Path:
    """Reliability diagrams, one panel per view, before and after temperature scaling.

    Parameters
    ----------
    curves : dict
        view -> ``(logits, y)`` (e.g. the test split of :func:`astrot2.calibration.split_logits`).
    temperature : float
    path : str or Path
        PNG file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 4.4), squeeze=False)
    for ax, (view, (z, y)) in zip(axes.flat, curves.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for t, colour, label in ((1.0, "tab:red", "raw"), (temperature, "tab:blue",
                                                           f"T = {temperature:.2f}")):
            p = softmax(z, t)
            table = reliability(p, y, n_bins)
            ece = expected_calibration_error(p, y, n_bins)
            conf, acc = np.array(table["confidence"]), np.array(table["accuracy"])
            seen = np.isfinite(acc)
            ax.plot(conf[seen], acc[seen], "o-", ms=3, color=colour,
                    label=f"{label}: ECE {ece:.3f}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean top probability (confidence)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{view.replace('_', ' ')} (n={len(y)})", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_risk_coverage(curves: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Accuracy vs coverage lines (one per label) from :func:`risk_coverage` results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for label, rc in curves.items():
        ax.plot(rc["coverage"], rc["accuracy"], "o-", ms=3,
                label=f"{label} (AURC {rc['aurc']:.3f})")
    ax.set_xlabel("coverage (fraction of alerts kept, most certain first)")
    ax.set_ylabel("accuracy of the kept alerts")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)

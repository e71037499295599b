"""Figures for people: light curves with their GP fits (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from astrot2.gp import GPResult
from astrot2.lightcurves import LightCurveBatch

__all__ = ["plot_gp_fits"]

#: One colour per band, blue to red, by band index (up to LSST's six bands).
BAND_COLOURS = ("tab:purple", "tab:green", "tab:red", "tab:orange", "tab:brown", "black")


def plot_gp_fits(
    batch: LightCurveBatch,
    result: GPResult,
    indices: Sequence[int],
    path: str | Path,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw observed points and the GP mean +/- 1 std of several light curves.

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

    n = len(indices)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, k, i in zip(axes.flat, range(n), indices, strict=False):
        lc = batch[i]
        t0 = result.times[i, 0]
        for b, name in enumerate(batch.survey.bands):
            colour = BAND_COLOURS[b % len(BAND_COLOURS)]
            sel = lc.band == b
            if sel.any():
                det = sel & lc.detected
                ax.errorbar(lc.time[det] - t0, lc.flux[det], lc.flux_err[det], fmt="o",
                            ms=3, color=colour, label=name)
                lim = sel & ~lc.detected
                ax.errorbar(lc.time[lim] - t0, lc.flux[lim], lc.flux_err[lim], fmt="v",
                            ms=3, color=colour, alpha=0.35)
                mu, sd = result.mean[i, :, b], result.std[i, :, b]
                x = result.times[i] - t0
                ax.plot(x, mu, color=colour, lw=1)
                ax.fill_between(x, mu - sd, mu + sd, color=colour, alpha=0.15, lw=0)
        title = titles[k] if titles is not None else f"{lc.object_id} ({lc.alert_id})"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"days since MJD {t0:.1f}")
        ax.set_ylabel("flux (FLUXCAL, ZP 27.5)")
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Survey definitions: passbands, their fixed order and central wavelengths.

The band order of a survey is fixed here, once.  Every reader maps a survey's own band
labels (ZTF ``fid``, Rubin ``band``, ELAsTiCC ``filterName``, PLAsTiCC ``passband``) to an
index into :attr:`Survey.bands`, never through a set or a hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from astrot2.errors import ConfigError

__all__ = ["LSST", "SURVEYS", "ZTF", "Survey", "get_survey"]


@dataclass(frozen=True)
class Survey:
    """A photometric survey: named passbands in a fixed order.

    Parameters
    ----------
    name : str
        Short name (``"ztf"``, ``"lsst"``).
    bands : tuple of str
        Band names, in the survey's canonical order (blue to red).
    wavelengths : tuple of float
        Central (effective) wavelength of each band, in Angstrom.
    aliases : dict of str to int
        Extra labels accepted for a band (e.g. ELAsTiCC's ``"Y"`` for LSST ``y``).
    """

    name: str
    bands: tuple[str, ...]
    wavelengths: tuple[float, ...]
    aliases: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.bands) != len(self.wavelengths):
            raise ConfigError(
                f"survey {self.name!r}: {len(self.bands)} bands but "
                f"{len(self.wavelengths)} wavelengths"
            )
        if list(self.wavelengths) != sorted(self.wavelengths):
            raise ConfigError(f"survey {self.name!r}: bands must be ordered blue to red")

    @property
    def n_bands(self) -> int:
        """Number of passbands."""
        return len(self.bands)

    @property
    def wavelength_array(self) -> np.ndarray:
        """Central wavelengths as an array of shape (n_bands,), in Angstrom."""
        return np.asarray(self.wavelengths, dtype=np.float64)

    def band_index(self, labels: np.ndarray) -> np.ndarray:
        """Map band labels (strings) to indices into :attr:`bands`.

        Parameters
        ----------
        labels : array-like of str, shape (n,)
            Band labels as written in the alerts.

        Returns
        -------
        ndarray of int8, shape (n,)
            Band index, or -1 where the label is not a band of this survey.
        """
        lookup = {b: i for i, b in enumerate(self.bands)}
        lookup.update(self.aliases)
        labels = np.asarray(labels, dtype=object)
        uniq, inverse = np.unique(labels.astype(str), return_inverse=True)
        codes = np.array([lookup.get(u, -1) for u in uniq], dtype=np.int8)
        return codes[inverse].reshape(labels.shape)


#: ZTF g, r, i (``fid`` 1, 2, 3). Wavelengths from the ZTF filter curves (avocado values).
ZTF = Survey(name="ztf", bands=("g", "r", "i"), wavelengths=(4813.9, 6421.8, 7883.0))

#: Rubin/LSST u, g, r, i, z, y (PLAsTiCC ``passband`` 0..5). ELAsTiCC writes ``Y``.
LSST = Survey(
    name="lsst",
    bands=("u", "g", "r", "i", "z", "y"),
    wavelengths=(3671.0, 4827.0, 6223.0, 7546.0, 8691.0, 9710.0),
    aliases={"Y": 5},
)

SURVEYS: dict[str, Survey] = {"ztf": ZTF, "lsst": LSST}


def get_survey(name: str | Survey) -> Survey:
    """Return the survey called ``name`` (``"ztf"`` or ``"lsst"``; ``"rubin"`` = lsst)."""
    if isinstance(name, Survey):
        return name
    key = {"rubin": "lsst"}.get(name.lower(), name.lower())
    if key not in SURVEYS:
        raise ConfigError(f"unknown survey {name!r}; choose one of {sorted(SURVEYS)}")
    return SURVEYS[key]

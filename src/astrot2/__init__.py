"""astrot2: real-time classification of astronomical transient alerts.

Raw alerts (ZTF, Rubin/LSST, ELAsTiCC, PLAsTiCC) -> light curves -> batched Gaussian-process
interpolation -> a compressed Time-Series Transformer -> class probabilities.
"""

from __future__ import annotations

from astrot2.errors import (
    AlertFormatError,
    Astrot2Error,
    ConfigError,
    DataFetchError,
    ModelError,
)
from astrot2.io import read_alerts
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST, ZTF, Survey

__version__ = "0.1.0"

__all__ = [
    "LSST",
    "ZTF",
    "AlertFormatError",
    "Astrot2Error",
    "ConfigError",
    "DataFetchError",
    "LightCurveBatch",
    "ModelError",
    "Survey",
    "__version__",
    "read_alerts",
]

"""The 14 PLAsTiCC classes t2 predicts, in the fixed output order of every model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CLASSES", "KAGGLE_WEIGHTS", "TransientClass", "class_index"]


@dataclass(frozen=True)
class TransientClass:
    """One output class: PLAsTiCC code, display name, column slug (``p_<slug>``)."""

    code: int
    name: str
    slug: str


#: Output order of every astrot2 model (t2's order, sorted by PLAsTiCC code).
CLASSES: tuple[TransientClass, ...] = (
    TransientClass(6, "mu-Lens-Single", "mu_lens"),
    TransientClass(15, "TDE", "tde"),
    TransientClass(16, "EB", "eb"),
    TransientClass(42, "SNII", "snii"),
    TransientClass(52, "SNIax", "sniax"),
    TransientClass(53, "Mira", "mira"),
    TransientClass(62, "SNIbc", "snibc"),
    TransientClass(64, "KN", "kn"),
    TransientClass(65, "M-dwarf", "m_dwarf"),
    TransientClass(67, "SNIa-91bg", "snia_91bg"),
    TransientClass(88, "AGN", "agn"),
    TransientClass(90, "SNIa", "snia"),
    TransientClass(92, "RRL", "rrl"),
    TransientClass(95, "SLSN-I", "slsn"),
)

#: Weights of the Kaggle PLAsTiCC metric: 1 for every class, 2 for TDE (15) and KN (64).
#: (The "class 99" of the Kaggle test set, weight 2, has no training objects.)
KAGGLE_WEIGHTS = np.array([2.0 if c.code in (15, 64) else 1.0 for c in CLASSES])


def class_index(codes: np.ndarray) -> np.ndarray:
    """Map PLAsTiCC class codes to output indices (-1 for codes not in :data:`CLASSES`)."""
    lookup = {c.code: i for i, c in enumerate(CLASSES)}
    codes = np.asarray(codes)
    return np.array([lookup.get(int(c), -1) for c in codes.ravel()], dtype=np.int64).reshape(
        codes.shape)

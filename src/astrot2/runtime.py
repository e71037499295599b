"""The inference runtime: ONNX Runtime only (importing this module never imports torch).

``Classifier.load(path)`` reads and verifies a model folder (manifest + model file), and
``predict(batch)`` runs the whole chain on a :class:`LightCurveBatch`: band selection,
batched GP, the feature seam of :mod:`astrot2.features`, the network, and, for
``NAME+companion``, the model's feature companion of :mod:`astrot2.companion`
(gradient-boosted trees, also ONNX), then the stored temperature and softmax.  The GP
and feature settings come from the manifest, so inference reproduces training's inputs.

The model file of a manifest is one of (by its suffix):

- ``.onnx``: ONNX protobuf;
- ``.ort``: ONNX Runtime's FlatBuffers format (graph already optimised; fastest to load);
- ``.t2c``: the compact entropy-coded artefact of :mod:`astrot2.compress.artefact`,
  decoded with NumPy into ONNX bytes (exactness checked by its own sha256).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from astrot2.companion import Companion
from astrot2.errors import ModelError
from astrot2.features import prepare_with_statistics
from astrot2.gp import GPResult, alert_status, classified
from astrot2.lightcurves import LightCurveBatch
from astrot2.manifest import Manifest, read_manifest
from astrot2.modelref import COMPANION_SUFFIX, ModelRef, resolve_model, shipped_models
from astrot2.priors import load_prior, reweight, training_prior
from astrot2.sessions import onnx_session

__all__ = ["MODEL_SUFFIXES", "Classifier", "ModelInputs", "ModelRef", "Prediction", "onnx_session",
           "resolve_model", "shipped_models"]

#: Model file kinds a manifest may name, by suffix.
MODEL_SUFFIXES = {".onnx": "onnx", ".ort": "ort", ".t2c": "compact"}


def _check_inputs(manifest: Manifest, session) -> None:
    """Refuse an ONNX graph whose inputs do not take what the manifest's settings produce.

    ``x`` must be ``(batch, gp.n_steps, features.n_channels)`` and ``extra``, present
    exactly when the features have extra inputs, ``(batch, features.n_extra)``; the
    feature bands must be bands of the survey.
    """
    where = f"{manifest.model_file} (manifest {manifest.name}@{manifest.version})"
    unknown = [b for b in manifest.features.bands if b not in manifest.survey.bands]
    if unknown:
        raise ModelError(f"{where}: feature bands {unknown} are not bands of the "
                         f"{manifest.survey.name} survey {list(manifest.survey.bands)}")
    shapes = {i.name: list(i.shape) for i in session.get_inputs()}
    n_extra = manifest.features.n_extra
    expected = {"x": [manifest.gp.n_steps, manifest.features.n_channels]}
    if n_extra:
        expected["extra"] = [n_extra]
    if set(shapes) != set(expected):
        raise ModelError(f"{where}: the ONNX graph takes inputs {sorted(shapes)}, the "
                         f"manifest's settings give {sorted(expected)}")
    for name, dims in expected.items():
        got = shapes[name][1:]
        if len(got) != len(dims) or any(isinstance(g, int) and g != d
                                        for g, d in zip(got, dims, strict=True)):
            raise ModelError(f"{where}: ONNX input {name!r} has shape {shapes[name]}, the "
                             f"manifest's survey/GP/feature settings give (batch, "
                             f"{', '.join(map(str, dims))}); the manifest does not match "
                             "the model: re-install or re-train it")
    if n_extra != manifest.n_extra:
        raise ModelError(f"{where}: manifest model.n_extra {manifest.n_extra} differs from "
                         f"its feature settings' {n_extra}")


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of a batch.

    Attributes
    ----------
    probabilities : ndarray of float32, shape (n_alerts, n_classes)
        Rows sum to 1 for classified alerts (:func:`astrot2.gp.classified`); all zeros
        for rejected ones (never NaN).
    status : ndarray of object (str), shape (n_alerts,)
        ``"ok"``, a flagged GP fit (``gp_max_iter``, ``gp_fallback``) or the reject
        reason (:func:`astrot2.gp.alert_status`).
    """

    probabilities: np.ndarray
    status: np.ndarray


@dataclass(frozen=True)
class ModelInputs:
    """What the network and the companion of a :class:`Classifier` read for a batch.

    Attributes
    ----------
    feeds : dict of str to ndarray of float32
        The ONNX inputs: ``x`` of shape (n_alerts, n_steps, n_channels) and, for a
        model with extra inputs, ``extra``.
    extra : ndarray of float32, shape (n_alerts, n_extra)
    selected : LightCurveBatch
        The light curves in the model's bands (what the GP was fitted on).
    gp : GPResult
    status : ndarray of object (str), shape (n_alerts,)
        ``"ok"`` or the reject reason.
    statistics : ndarray of float64, shape (n_alerts, n_statistics), or None
        The light-curve statistics the extra inputs were standardised from (None for a
        network without them); the companion reuses them.
    """

    feeds: dict[str, np.ndarray]
    extra: np.ndarray
    selected: LightCurveBatch
    gp: GPResult
    status: np.ndarray
    statistics: np.ndarray | None = None


class Classifier:
    """A verified model ready to classify light curves.

    Use :meth:`load`; the constructor takes an already-verified manifest and session.
    """

    def __init__(self, manifest: Manifest, session, threads: int | None = None,
                 companion: Companion | None = None, prior: np.ndarray | None = None
                 ) -> None:
        self.manifest = manifest
        #: The class mix the probabilities are re-weighted to (:mod:`astrot2.priors`);
        #: None: the model's own (the flat prior of its training loss).
        self.prior = prior
        self._train_prior = training_prior(manifest.raw)  # the mix its loss saw (None: flat)
        self.session = session
        self.threads = threads  # GP worker threads (None: all cores)
        self.companion = companion  # the feature companion, when the model has one
        self._inputs = [i.name for i in session.get_inputs()]
        #: Set to a dict to accumulate the seconds of each stage of :meth:`scores`
        #: (``gp_and_features``, ``network``, ``companion``): profiling, benchmarks.
        self.stage_seconds: dict[str, float] | None = None

    @classmethod
    def load(cls, model: str | Path | ModelRef, *, threads: int | None = None,
             companion: bool | None = None, prior: str | Path | None = "flat"
             ) -> Classifier:
        """Load a model folder (or its manifest.json, or a shipped model's name).

        The model file's sha256 is checked against the manifest; ONNX Runtime's graph
        optimisations are all on.  ONNX, ORT-format and compact (``.t2c``) files load.

        Parameters
        ----------
        model : str, Path or ModelRef
            A model folder, its manifest, or a shipped model's name; ``NAME+companion``
            also loads the model's feature companion (see :meth:`ModelRef.parse`).
        threads : int, optional
            Threads of the GP fit and ONNX Runtime intra-op threads (default: all cores
            for the GP, ONNX Runtime's own choice).  Results do not depend on it; a Spark
            worker, which runs one task per core, uses 1.
        companion : bool, optional
            Combine the network with the model's feature companion (:mod:`astrot2.
            companion`; the model must have one).  Default: as ``model`` says
            (``NAME+companion``).
            Off by default: the shipped default is the compressed network alone.
        prior : str or Path, optional
            The class mix the probabilities are for (:func:`astrot2.priors.load_prior`):
            ``flat`` (default: every class alike), ``bts``, ``model`` (the mix the model
            was trained with, its raw output) or a JSON file.

        Raises
        ------
        ModelError
            See :func:`astrot2.manifest.read_manifest`; also for an unknown model file
            kind, a compact file that does not decode exactly, or if ONNX Runtime
            rejects the model.
        """
        ref = ModelRef.parse(model, companion=companion)
        manifest = read_manifest(ref.folder)
        file = manifest.model_file
        kind = MODEL_SUFFIXES.get(file.suffix)
        if kind is None:
            raise ModelError(f"{file}: unknown model file kind {file.suffix!r} (expected one "
                             f"of {sorted(MODEL_SUFFIXES)})")
        model: str | bytes = str(file)
        if kind == "compact":
            from astrot2.compact import read_compact

            model = read_compact(file)
        config = {"session.load_model_format": "ORT"} if kind == "ort" else {}
        session = onnx_session(model, file, threads, config=config)
        _check_inputs(manifest, session)
        helper = None
        if ref.companion:
            section = manifest.raw.get("companion")
            if section is None:
                raise ModelError(f"{manifest.model_file.parent}: the model has no feature "
                                 "companion (fit one with astrot2 companion)")
            helper = Companion.load(manifest.model_file.parent, section, manifest.features,
                                    manifest.n_extra, threads)
        return cls(manifest, session, threads, helper,
                   None if prior is None else load_prior(prior))

    @property
    def name(self) -> str:
        """``name@version``, with ``+companion`` when the companion is used."""
        suffix = COMPANION_SUFFIX if self.companion is not None else ""
        return f"{self.manifest.name}@{self.manifest.version}{suffix}"

    @property
    def temperature(self) -> float:
        """The stored temperature (``astrot2 calibrate``) of what :meth:`scores` returns.

        The manifest's ``calibration`` for the network alone; with the companion, the
        companion section's own ``calibration`` (``astrot2 calibrate --model
        NAME+companion``).
        """
        section = self.manifest.raw
        if self.companion is not None:
            section = self.companion.section
        return float((section.get("calibration") or {}).get("temperature", 1.0))

    #: Light curves per ONNX Runtime call: bounds the attention buffers (n_heads * n_steps**2
    #: floats per light curve, 640 KB for t2) whatever the size of the batch.
    MODEL_BATCH = 256

    def logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The network's logits (float64) for model inputs, in slices of ``MODEL_BATCH``."""
        n = len(feeds["x"])
        out = [self.session.run(None, {k: v[i:i + self.MODEL_BATCH] for k, v in feeds.items()})[0]
               for i in range(0, n, self.MODEL_BATCH)]
        if not out:
            return np.zeros((0, len(self.manifest.raw["classes"])))
        return np.concatenate(out).astype(np.float64)

    def model_inputs(self, batch: LightCurveBatch, *, check_survey: bool = True
                     ) -> ModelInputs:
        """The first step of :meth:`scores`: band selection, GP and the feature seam.

        Raises
        ------
        ModelError
            ``check_survey`` and light curves of another survey than the model's.
        """
        m = self.manifest
        if check_survey and batch.survey.name != m.survey.name:
            raise ModelError(f"model {self.name} is for {m.survey.name} alerts, got "
                             f"{batch.survey.name} light curves; pick the matching model")
        x, extra, selected, gp, stats = prepare_with_statistics(batch, m.gp, m.features,
                                                                n_threads=self.threads)
        status = alert_status(selected.reject, gp.status)
        feeds = {"x": x}
        if "extra" in self._inputs:
            feeds["extra"] = extra
        return ModelInputs(feeds=feeds, extra=extra, selected=selected, gp=gp, status=status,
                           statistics=stats)

    def combine(self, logits: np.ndarray, inputs: ModelInputs
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """The last step of :meth:`scores`: the network's logits combined with the feature
        companion's log-probabilities when the model runs with it.

        Returns
        -------
        logits : ndarray of float64, shape (n_alerts, n_classes)
            Unchanged without a companion.
        companion : ndarray of float64, shape (n_alerts, n_classes), or None
            The companion's own probabilities (None without a companion).
        """
        if self.companion is None:
            return logits, None
        own = self.companion.probabilities(inputs.selected, inputs.extra, inputs.gp,
                                           inputs.statistics)
        return self.companion.combine(logits, own, inputs.selected), own

    def scores(self, batch: LightCurveBatch, *, check_survey: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated logits (float64) and status of every light curve of ``batch``.

        :meth:`model_inputs`, the network (:meth:`logits`), :meth:`combine`: the
        network's logits, combined with the feature companion's log-probabilities when
        the model has one; before the stored temperature.  See :meth:`predict`.
        """
        t0 = time.perf_counter()
        inputs = self.model_inputs(batch, check_survey=check_survey)
        t1 = time.perf_counter()
        logits = self.logits(inputs.feeds)
        t2 = time.perf_counter()
        logits, _ = self.combine(logits, inputs)
        if self.stage_seconds is not None:
            for key, seconds in (("gp_and_features", t1 - t0), ("network", t2 - t1),
                                 ("companion", time.perf_counter() - t2)):
                self.stage_seconds[key] = self.stage_seconds.get(key, 0.0) + seconds
        return logits, inputs.status

    def predict(self, batch: LightCurveBatch, *, check_survey: bool = True) -> Prediction:
        """Class probabilities for every light curve of ``batch`` (one row each).

        Parameters
        ----------
        batch : LightCurveBatch
        check_survey : bool
            Refuse light curves of another survey than the model's (default).  Evaluation
            turns it off to score the ``ztf`` model on the PLAsTiCC g, r bands it was
            trained on.
        """
        return self.calibrated(*self.scores(batch, check_survey=check_survey))

    def calibrated(self, logits: np.ndarray, status: np.ndarray) -> Prediction:
        """The :class:`Prediction` of uncalibrated logits (:meth:`scores`): the stored
        temperature, softmax, ``non_finite_output`` for rows that are not finite, zeros
        for every rejected row.  ``status`` is updated in place."""
        z = logits / self.temperature
        z -= z.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        bad = ~np.isfinite(prob).all(axis=1)  # before reweight, which zeroes such rows
        prob = reweight(prob, self.prior, self._train_prior)
        bad |= ~np.isfinite(prob).all(axis=1)
        status[classified(status) & bad] = "non_finite_output"
        prob[~classified(status)] = 0.0
        return Prediction(probabilities=prob.astype(np.float32), status=status)

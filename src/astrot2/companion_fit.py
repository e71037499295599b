"""Fitting the feature companion (``astrot2 companion``): the trees, their ONNX form and the
combination weights.  The inference half is :mod:`astrot2.companion`; this half needs
scikit-learn and onnx (the ``train`` extra) and sits above the runtime.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from astrot2.companion import (
    CC_TEMPLATES_FILE,
    COMPANION_FILE,
    FEATURE_SETS,
    TEMPLATES_FILE,
    Combination,
    companion_feature_names,
    companion_features,
    onnx_probabilities,
    uses_cc_templates,
    uses_templates,
)
from astrot2.errors import ConfigError, ModelError
from astrot2.lightcurves import LightCurveBatch
from astrot2.modelref import ModelRef
from astrot2.templates import TemplateGrid
from astrot2.utils import sha256_file

__all__ = ["CompanionConfig", "CompanionData", "check_specialist", "companion_data",
           "fit_combination", "fit_companion", "hierarchical_probabilities", "trees_to_onnx"]


def fit_combination(logits: np.ndarray, prob: np.ndarray, n_points: np.ndarray,
                    y: np.ndarray) -> tuple[Combination, float]:
    """The :class:`Combination` minimising the negative log-likelihood of ``y``.

    The plain NLL, the objective of temperature scaling: the combination is also the
    calibration map of the two experts (a temperature fitted afterwards is ~1).

    Parameters
    ----------
    logits : ndarray, shape (n, n_classes)
        The network's raw logits.
    prob : ndarray, shape (n, n_classes)
        The companion's probabilities for the same light curves.
    n_points : ndarray of int, shape (n,)
        Points of each light curve in the model's bands.
    y : ndarray of int, shape (n,)
        Class indices.

    Returns
    -------
    Combination, float
        The fit and its NLL.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    center = float(np.log1p(np.asarray(n_points, dtype=np.float64)).mean())
    rows = np.arange(len(y))

    def loss(p: np.ndarray) -> float:
        log_p = log_softmax(Combination(*p, center).logits(logits, prob, n_points), axis=1)
        return float(-log_p[rows, y].mean())

    res = minimize(loss, np.array([1.0, 0.0, 0.5, 0.0]), method="Nelder-Mead",
                   options={"xatol": 1e-5, "fatol": 1e-7, "maxiter": 4000})
    return Combination(*(float(v) for v in res.x), center), float(res.fun)


def _tree_attributes(gbm, prefix: str) -> dict[str, list]:
    """The ``ai.onnx.ml`` tree-ensemble attributes of a fitted
    ``HistGradientBoostingClassifier``'s trees: nodes, and each leaf's value for the output
    of its tree (``prefix`` "class" for a classifier's ``class_*``, "target" for a
    regressor's ``target_*``).  Thresholds are stored as the largest float32 not above
    scikit-learn's float64 threshold, so a float32 input takes the same branch as in
    scikit-learn; NaN follows each node's learned missing-value direction.

    Raises
    ------
    ModelError
        A categorical split.
    """
    attrs: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
        f"{prefix}_treeids", f"{prefix}_nodeids", f"{prefix}_ids", f"{prefix}_weights")}
    tree = 0
    for iteration in gbm._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ModelError("categorical splits are not exported")
            for i, node in enumerate(nodes):
                leaf = bool(node["is_leaf"])
                threshold = np.float32(node["num_threshold"]) if not leaf else np.float32(0)
                if not leaf and float(threshold) > float(node["num_threshold"]):
                    threshold = np.nextafter(threshold, np.float32(-np.inf))
                attrs["nodes_treeids"].append(tree)
                attrs["nodes_nodeids"].append(i)
                attrs["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
                attrs["nodes_values"].append(float(threshold))
                attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
                attrs["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
                attrs["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
                attrs["nodes_missing_value_tracks_true"].append(
                    0 if leaf else int(node["missing_go_to_left"]))
                if leaf:
                    attrs[f"{prefix}_treeids"].append(tree)
                    attrs[f"{prefix}_nodeids"].append(i)
                    attrs[f"{prefix}_ids"].append(k)
                    attrs[f"{prefix}_weights"].append(float(node["value"]))
            tree += 1
    return attrs


def trees_to_onnx(gbm, n_features: int, specialist=None, column: int | None = None):
    """A fitted multi-class ``HistGradientBoostingClassifier`` as an ONNX model, with an
    optional binary specialist for one class.

    Without ``specialist``: one ``ai.onnx.ml`` ``TreeEnsembleClassifier`` node (opset 3),
    softmax of the summed leaf values plus the baseline: the classifier's
    ``predict_proba``.  With a ``specialist``: its probability, prior-shifted
    (:func:`_flat_logit`), is output ``column``'s, and the other columns share the rest
    as the multi-class trees' softmax over them alone (a hierarchical classifier:
    :func:`hierarchical_probabilities`).  Thresholds and NaN routes as
    :func:`_tree_attributes`.  (skl2onnx 1.20's converter fails with onnx >= 1.23.)

    Parameters
    ----------
    gbm : HistGradientBoostingClassifier
        Fitted, three classes or more.
    n_features : int
        Width of the input ``features`` (float32, ``(n, n_features)``).
    specialist : HistGradientBoostingClassifier, optional
        Fitted binary classifier (class True: ``column``'s class), its two sides weighted
        equally.
    column : int, optional
        The output column the specialist gives (ignored without one).

    Returns
    -------
    onnx.ModelProto
        Outputs ``label`` (the most probable class's label) and ``probabilities``
        (``(n, len(gbm.classes_))``, rows sum to 1).

    Raises
    ------
    ModelError
        A categorical split, a binary ``gbm``, or a ``specialist`` that is not binary or
        without a valid ``column``.
    """
    from onnx import TensorProto, helper

    n_classes = len(gbm.classes_)
    if n_classes < 3:
        raise ModelError("trees_to_onnx exports multi-class classifiers only")
    labels = [int(c) for c in gbm.classes_]
    ensemble = helper.make_node(
        "TreeEnsembleClassifier", ["features"],
        ["label" if specialist is None else "trees_label",
         "probabilities" if specialist is None else "scores"],
        domain="ai.onnx.ml", post_transform="SOFTMAX" if specialist is None else "NONE",
        classlabels_int64s=labels, base_values=[float(v) for v in np.ravel(
            gbm._baseline_prediction)], **_tree_attributes(gbm, "class"))
    nodes = [ensemble]
    if specialist is not None:
        if len(specialist.classes_) != 2 or column is None or not 0 <= column < n_classes:
            raise ModelError("a specialist is a binary classifier of one output column")
        one_hot = np.zeros(n_classes, dtype=np.float32)
        one_hot[column] = 1.0
        # the mask leaves the column out of the others' softmax: raw scores are tens at
        # most (the shipped lsst trees': -27 to 36), far from 1e4
        const = [helper.make_node("Constant", [], [name], value=helper.make_tensor(
            name, dtype, shape, value))
            for name, dtype, shape, value in (
                ("one_hot", TensorProto.FLOAT, [n_classes], one_hot.tolist()),
                ("mask", TensorProto.FLOAT, [n_classes], (-1e4 * one_hot).tolist()),
                ("one", TensorProto.FLOAT, [], [1.0]),
                ("labels", TensorProto.INT64, [n_classes], labels))]
        nodes += [
            *const,
            helper.make_node("TreeEnsembleRegressor", ["features"], ["specialist_score"],
                             domain="ai.onnx.ml", n_targets=1, aggregate_function="SUM",
                             base_values=[_flat_logit(specialist, n_classes)],
                             **_tree_attributes(specialist, "target")),
            helper.make_node("Sigmoid", ["specialist_score"], ["q"]),
            helper.make_node("Sub", ["one", "q"], ["rest"]),
            helper.make_node("Add", ["scores", "mask"], ["masked"]),
            helper.make_node("Softmax", ["masked"], ["others"], axis=1),
            helper.make_node("Mul", ["others", "rest"], ["others_share"]),
            helper.make_node("Mul", ["q", "one_hot"], ["column_share"]),
            helper.make_node("Add", ["others_share", "column_share"], ["probabilities"]),
            helper.make_node("ArgMax", ["probabilities"], ["best"], axis=1, keepdims=0),
            helper.make_node("Gather", ["labels", "best"], ["label"])]
    graph = helper.make_graph(
        nodes, "astrot2_companion",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                       [None, n_classes])])
    return helper.make_model(graph, producer_name="astrot2.companion", opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


def _flat_logit(specialist, n_classes: int) -> float:
    """The baseline of a binary ``specialist`` fitted with its two sides weighted equally,
    shifted by the flat mix's prior odds of its class: its odds times ``1 / (n_classes -
    1)`` (Bayes' rule for the class against the rest; the ranking is unchanged).  Exact
    for the flat mix only where the rest's own mix does not matter: the rest side learned
    the training mix of the other classes, not a flat one."""
    return float(np.ravel(specialist._baseline_prediction)[0]) - float(np.log(n_classes - 1))


def hierarchical_probabilities(gbm, specialist, column: int, x: np.ndarray) -> np.ndarray:
    """What :func:`trees_to_onnx` with a ``specialist`` computes, in scikit-learn.

    Parameters
    ----------
    gbm, specialist, column
        As :func:`trees_to_onnx`.
    x : ndarray, shape (n, n_features)

    Returns
    -------
    ndarray, shape (n, len(gbm.classes_))
        Column ``column``: the specialist's probability ``q`` with its odds times ``1 /
        (n_classes - 1)`` (:func:`_flat_logit`); the others: ``1 - q`` times the
        multi-class trees' softmax over those columns alone.
    """
    from scipy.special import expit, softmax

    scores = gbm.decision_function(x).astype(np.float64)
    scores[:, column] = -np.inf
    q = expit(specialist.decision_function(x).astype(np.float64)
              - np.log(len(gbm.classes_) - 1))
    prob = softmax(scores, axis=1) * (1.0 - q)[:, None]
    prob[:, column] = q
    return prob


#: The SN Ia specialist's boosting settings besides its leaves (CompanionConfig.ia_leaves),
#: chosen with 16 leaves by a design check on the training views (docs/model.md, rule 19).
SPECIALIST_LEARNING_RATE = 0.1
SPECIALIST_MAX_ITER = 1000


@dataclass(frozen=True)
class CompanionConfig:
    """scikit-learn HistGradientBoostingClassifier settings of the companion."""

    max_iter: int = 500
    learning_rate: float = 0.15
    max_leaf_nodes: int = 4  # small trees: a 0.35 MB ONNX file for lsst, as good as 15 leaves
    min_samples_leaf: int = 20
    l2_regularization: float = 1.0
    n_iter_no_change: int = 30  # early stopping on the validation views
    seed: int = 0
    # for a network with host photo-z inputs: also every training and validation view
    # without it (augment.without_redshift); else unknown photo-z reads as "galactic"
    redshift_dropout: bool = True
    feature_set: str = "points"  # companion.FEATURE_SETS
    # with simulated light curves (a representative run): alert cuts of each
    n_sim_cuts: int = 4
    # > 0: a SN Ia specialist, binary trees of this many leaves, gives P(SN Ia); the
    # 14-class trees share 1 - P(SN Ia) among the other classes (0: none)
    ia_leaves: int = 0

    def __post_init__(self) -> None:
        if self.n_sim_cuts < 1:
            raise ConfigError(f"CompanionConfig.n_sim_cuts must be >= 1, not {self.n_sim_cuts}")
        if self.ia_leaves < 0 or self.ia_leaves == 1:
            raise ConfigError("CompanionConfig.ia_leaves must be 0 (no specialist) or >= 2, "
                              f"not {self.ia_leaves}")
        if self.feature_set not in FEATURE_SETS:
            raise ConfigError(f"CompanionConfig.feature_set must be one of {FEATURE_SETS}, "
                              f"not {self.feature_set!r}")


def views_features(clf, views: list[LightCurveBatch], feature_set: str,
                   with_logits: bool = True, templates: TemplateGrid | None = None,
                   cc_templates: TemplateGrid | None = None) -> tuple[list, list, list]:
    """Companion features (:func:`companion_features`; ``templates``: the SALT2 table of
    a "+salt2" set, ``cc_templates`` the core-collapse one of "+cc") and (``with_logits``)
    network logits of the usable light curves of each view, and which light curves those
    are (band selection passed, GP fitted)."""
    from astrot2.features import prepare_with_statistics

    m = clf.manifest
    feats, logits, oks = [], [], []
    for view in views:
        x, extra, selected, gp, stats = prepare_with_statistics(view, m.gp, m.features,
                                                                n_threads=clf.threads)
        ok = selected.ok & gp.converged
        feats.append(companion_features(selected, extra, gp, m.features, feature_set,
                                        stats, templates, clf.threads, cc_templates)[ok])
        if with_logits:
            logits.append(clf.logits({"x": x[ok], **({"extra": extra[ok]} if m.n_extra
                                                     else {})}))
        oks.append(ok)
    return feats, logits, oks


@dataclass
class CompanionData:
    """What the companion of a model folder learns from and is combined on.

    Attributes
    ----------
    x_train, y_train : ndarray
        Features and class indices of the usable training views.
    x_val, z_val, y_val : ndarray
        Features, network logits and class indices of the usable validation views.
    val_views : list of str
        The validation views, in order.
    val_sizes : list of int
        Usable light curves of each validation view (rows of ``x_val``, in order).
    names : list of str
        The feature names.
    templates : TemplateGrid or None
        The SALT2 table the features were computed with ("+salt2" sets).
    cc_templates : TemplateGrid or None
        The core-collapse table ("+cc").
    groups_train : ndarray or None
        The object each training row comes from (copies of one object share it).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    z_val: np.ndarray
    y_val: np.ndarray
    val_views: list[str]
    val_sizes: list[int]
    names: list[str]
    templates: TemplateGrid | None = None
    cc_templates: TemplateGrid | None = None
    groups_train: np.ndarray | None = None


def companion_data(clf, folder: Path, batch: LightCurveBatch, config: CompanionConfig,
                   real_views: tuple[list, dict] | None = None,
                   simulated: LightCurveBatch | None = None) -> CompanionData:
    """The training and validation views of the companion of ``folder`` (loaded as
    ``clf``), through the network's preprocessing.

    The network's own training views (``recipe.training_views``), and for a representative
    run its representative copies; the validation split as the network's evaluation cuts it
    (and its representative views); with ``config.redshift_dropout`` and a network reading
    host photo-z, every view also without it.  A network fine-tuned on real light curves
    passes its views instead (``real_views``: :func:`astrot2.train_real.companion_views`).
    ``simulated`` labelled light curves of a representative run's survey (``astrot2
    simulate --survey lsst``) join the training views only: ``config.n_sim_cuts`` alert
    cuts of each, the representative copies' share without host photo-z.

    Raises
    ------
    ConfigError
        ``simulated`` for a folder that is not a representative run (a real-sky run passes
        its simulated light curves in ``real_views``).
    """
    from astrot2.augment import without_redshift
    from astrot2.classes import class_index
    from astrot2.recipe import split_indices, split_views, training_settings, training_views
    from astrot2.representative import (
        folder_config,
        representative_training,
        representative_views,
        simulated_cuts,
    )

    m = clf.manifest
    if real_views is not None:
        train, val = list(real_views[0]), dict(real_views[1])
    else:
        y_tr = class_index(batch.extra["target"])[split_indices(batch, folder, "train")]
        train = [(v, y_tr) for v in training_views(folder, batch)]
        val = split_views(clf, batch, "validation")
    if config.redshift_dropout and m.features.use_redshift:
        train += [(without_redshift(v), y) for v, y in train]
        val.update({f"{k}_without_photoz": (without_redshift(v), y)
                    for k, (v, y) in list(val.items())})
    rep = None if real_views is not None else folder_config(folder)
    if simulated is not None and rep is None:
        raise ConfigError(f"{folder}: simulated light curves join a representative run's "
                          "companion (astrot2 train --model lsst --representative); a "
                          "real-sky run's come with --real")
    if rep is not None:  # a representative run: its representative views too
        augment_config = training_settings(folder).augment
        part = batch.take(split_indices(batch, folder, "train"))
        train += [(v, y_tr) for v in representative_training(part, m.gp, augment_config, rep)]
        if simulated is not None:
            y_sim = class_index(simulated.extra["target"])
            train += [(v, y_sim) for v in simulated_cuts(simulated, augment_config, rep,
                                                         config.n_sim_cuts)]
        part = batch.take(split_indices(batch, folder, "validation"))
        val.update({f"representative/{k}": v for k, v in representative_views(
            part, m.gp, augment_config, rep, "validation").items()})
    from astrot2.simulate import cc_grid, salt2_grid

    templates = salt2_grid(m.survey.name) if uses_templates(config.feature_set) else None
    cc = cc_grid(m.survey.name) if uses_cc_templates(config.feature_set) else None
    x_tr, _, ok_tr = views_features(clf, [v for v, _ in train], config.feature_set,
                                    with_logits=False, templates=templates, cc_templates=cc)
    x_va, z_va, ok_va = views_features(clf, [v for v, _ in val.values()], config.feature_set,
                                       templates=templates, cc_templates=cc)
    return CompanionData(
        x_train=np.concatenate(x_tr),
        y_train=np.concatenate([y[ok] for (_, y), ok in zip(train, ok_tr, strict=True)]),
        x_val=np.concatenate(x_va), z_val=np.concatenate(z_va),
        y_val=np.concatenate([y[ok] for (_, y), ok in zip(val.values(), ok_va, strict=True)]),
        val_views=list(val), val_sizes=[int(ok.sum()) for ok in ok_va],
        names=companion_feature_names(m.features, m.n_extra, config.feature_set),
        templates=templates, cc_templates=cc,
        groups_train=np.concatenate([np.asarray(v.object_id, dtype=str)[ok]
                                     for (v, _), ok in zip(train, ok_tr, strict=True)]))


def check_specialist(config: CompanionConfig, real: bool) -> None:
    """Refuse a SN Ia specialist (``config.ia_leaves``) for a real-sky model's companion
    (``real``): its trees are weighted to the training class mix, the specialist's
    probability is for the flat one.

    Raises
    ------
    ConfigError
    """
    if config.ia_leaves and real:
        raise ConfigError("--ia-leaves: a SN Ia specialist is for companions of the flat "
                          "class mix, not for a real-sky model's (--real: its trees are "
                          "weighted to the training class mix)")


def _booster(config: CompanionConfig, **settings):
    """A ``HistGradientBoostingClassifier`` of ``config``'s settings (``settings``
    override them), early stopping on the validation views."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**{
        "max_iter": config.max_iter, "learning_rate": config.learning_rate,
        "max_leaf_nodes": config.max_leaf_nodes, "min_samples_leaf": config.min_samples_leaf,
        "l2_regularization": config.l2_regularization, "early_stopping": True,
        "n_iter_no_change": config.n_iter_no_change, "random_state": config.seed,
        **settings})


def _fit_specialist(config: CompanionConfig, x_train: np.ndarray, y_train: np.ndarray,
                    x_val: np.ndarray, y_val: np.ndarray) -> tuple[object, int | None]:
    """The SN Ia specialist of ``config.ia_leaves``.

    Binary SN Ia vs rest trees on the companion's features (of all 14 classes), the two
    sides weighted equally (the rest keeps its training mix), early stopping on the
    validation views as the 14-class trees.

    Returns
    -------
    HistGradientBoostingClassifier or None, int or None
        The fitted specialist and the output column it gives (SN Ia's class index);
        ``None, None`` without one (``ia_leaves`` 0).
    """
    if config.ia_leaves == 0:
        return None, None
    from astrot2.classes import class_index

    ia = int(class_index(np.array([90]))[0])
    is_ia = [y_train == ia, y_val == ia]
    specialist = _booster(config, max_iter=SPECIALIST_MAX_ITER,
                          learning_rate=SPECIALIST_LEARNING_RATE,
                          max_leaf_nodes=config.ia_leaves)
    specialist.fit(x_train, is_ia[0], sample_weight=_balanced(is_ia[0].astype(int)),
                   X_val=x_val, y_val=is_ia[1], sample_weight_val=_balanced(
                       is_ia[1].astype(int)))
    return specialist, ia


def _balanced(y: np.ndarray) -> np.ndarray:
    """Sample weights of a flat class mix: ``n / (n_classes_present * n_class)``."""
    from astrot2.classes import CLASSES

    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    return len(y) / (np.count_nonzero(counts) * counts[y])


def fit_companion(model: str | Path | ModelRef, batch: LightCurveBatch,
                  config: CompanionConfig = CompanionConfig(), *, write: bool = True,
                  real_views: tuple[list, dict] | None = None, metrics: bool = True,
                  simulated: LightCurveBatch | None = None,
                  simulated_record: dict | None = None, log=print) -> dict:
    """Train, export and attach the companion of a model folder.

    Parameters
    ----------
    model : str or Path
        A model folder with ``split.json`` and ``train_config.json`` (or a shipped name).
    batch : LightCurveBatch
        The labelled PLAsTiCC training set.
    config : CompanionConfig
    write : bool
        Write ``companion.onnx`` and the manifest's ``companion`` section (replacing a
        previous one) with the combination's held-out metrics (test split, as ``astrot2
        evaluate --model NAME+companion`` measures them).  The combination is fitted by NLL
        and is its own calibration: no temperature is stored (``astrot2 calibrate
        --model NAME+companion`` can add one).  Off: report only.
    real_views : tuple, optional
        For a network fine-tuned on real light curves: its training and validation views
        (:func:`astrot2.train_real.companion_views`).  The trees then learn the classes
        those views hold (their indices are the section's ``classes``; the others get
        probability 0, as the network gives them), weighted as the network was
        (:func:`astrot2.realsky.class_weights`); validation light curves of other classes
        are left out of early stopping and of the combination's fit.
    metrics : bool
        With ``write``: measure the held-out PLAsTiCC figures into the section (needs the
        whole PLAsTiCC training set in ``batch``; a real-sky model's real figures are
        ``benchmarks.real_sky``'s).
    simulated : LightCurveBatch, optional
        For a representative run: simulated labelled light curves whose alert cuts join
        the trees' training views (:func:`companion_data`); never validation.
    simulated_record : dict, optional
        What the section says of them besides their number and cuts (their file's sha256).

    Returns
    -------
    dict
        The ``companion`` section (weights, sizes, validation figures).

    Raises
    ------
    ConfigError
        A folder fine-tuned on real light curves without ``real_views``, or a SN Ia
        specialist (``config.ia_leaves``) with them.
    """
    from astrot2.classes import CLASSES
    from astrot2.manifest import rewrite_manifest
    from astrot2.metrics import weighted_log_loss
    from astrot2.runtime import Classifier
    from astrot2.train_real import FINETUNE_FILE

    ref = ModelRef.parse(model)
    folder = ref.folder
    check_specialist(config, real_views is not None)
    if real_views is None and (folder / FINETUNE_FILE).is_file():
        raise ConfigError(f"{folder} was fine-tuned on real light curves: its companion "
                          "learns from them (astrot2 companion --real DIR [--simulated FILE])")
    clf = Classifier.load(folder)
    data = companion_data(clf, folder, batch, config, real_views, simulated)
    x_train, y_train = data.x_train, data.y_train
    x_val, z_val, y_val = data.x_val, data.z_val, data.y_val
    log(f"companion: {len(y_train)} training views, {len(y_val)} validation views")

    learned = np.isin(y_val, np.unique(y_train))
    x_val, z_val, y_val = x_val[learned], z_val[learned], y_val[learned]
    if real_views is None:  # flat: each sample weighs 1 / its class's share
        w_train, w_val = _balanced(y_train), _balanced(y_val)
    else:
        from astrot2.realsky import class_weights
        from astrot2.train_real import read_finetune_config

        weight = class_weights(y_train, read_finetune_config(folder).real.weight_floor)
        w_train, w_val = weight[y_train], weight[y_val]
    gbm = _booster(config)
    gbm.fit(x_train, y_train, sample_weight=w_train, X_val=x_val, y_val=y_val,
            sample_weight_val=w_val)
    classes = [int(c) for c in gbm.classes_]
    if real_views is None and classes != list(range(len(CLASSES))):
        raise ModelError("the companion's training views miss a class; cannot export it")
    specialist, column = _fit_specialist(config, x_train, y_train, x_val, y_val)
    onx = trees_to_onnx(gbm, x_train.shape[1], specialist, column)
    from astrot2.sessions import onnx_session

    session = onnx_session(onx.SerializeToString(), "the companion being fitted")
    subset = None if len(classes) == len(CLASSES) else classes
    p_val = onnx_probabilities(session, x_val, subset)
    want = (gbm.predict_proba(x_val) if specialist is None else
            hierarchical_probabilities(gbm, specialist, column, x_val))
    parity = float(np.abs(p_val[:, classes] - want).max())
    names = data.names
    n_val = x_val[:, names.index("n_points")]
    combination, nll = fit_combination(z_val, p_val, n_val, y_val)
    from scipy.special import softmax

    section = {
        "file": COMPANION_FILE, "kind": "scikit-learn HistGradientBoostingClassifier",
        "bands": list(clf.manifest.features.bands), "features": names,
        "feature_set": config.feature_set,
        **({} if subset is None else {"classes": subset}),
        "combination": asdict(combination), "config": asdict(config),
        "n_iter": int(gbm.n_iter_), "n_train_views": len(y_train),
        **({} if specialist is None else {"ia_specialist": {
            "class": "SNIa", "n_iter": int(specialist.n_iter_),
            "leaves": config.ia_leaves, "learning_rate": SPECIALIST_LEARNING_RATE}}),
        **({} if simulated is None else {"simulated": {
            "light_curves": simulated.n_objects, "cuts": config.n_sim_cuts,
            **(simulated_record or {})}}),
        "onnx_vs_sklearn_max_abs_diff": parity,
        "fitted_on": {"split": "validation" if real_views is None else "real_validation",
                      "views": data.val_views,
                      "objective": "negative log-likelihood", "nll": nll},
        "validation_flat_log_loss": {
            "t2": float(weighted_log_loss(y_val, softmax(z_val, axis=1))),
            "companion": float(weighted_log_loss(y_val, p_val)),
            "combined": float(weighted_log_loss(y_val, softmax(
                combination.logits(z_val, p_val, n_val), axis=1)))},
    }
    if write:
        path = folder / COMPANION_FILE
        path.write_bytes(onx.SerializeToString())
        section["sha256"] = sha256_file(path)
        section["bytes"] = path.stat().st_size
        for key, file, grid, built_by in (
                ("templates", TEMPLATES_FILE, data.templates, "salt2_grid"),
                ("cc_templates", CC_TEMPLATES_FILE, data.cc_templates, "cc_grid")):
            if grid is not None:
                grid.save(folder / file)
                section[key] = {
                    "file": file, "sha256": sha256_file(folder / file),
                    "bytes": (folder / file).stat().st_size, "source": grid.source,
                    "built_by": f"astrot2.simulate.{built_by} (sncosmo)"}
            elif (folder / file).is_file():  # a previous companion's table: no longer read
                (folder / file).unlink()
                log(f"companion: removed {file} (the new feature set reads no such table)")

        rewrite_manifest(folder, lambda doc: doc.__setitem__("companion", section))
        if metrics:
            from astrot2.calibration import refresh_metrics

            refresh_metrics(replace(ref, companion=True), batch)  # the held-out figures
    log(json.dumps({k: section[k] for k in ("n_iter", "combination",
                                            "validation_flat_log_loss")}))
    return section


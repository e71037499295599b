"""The PyTorch t2: published size, shapes, gradients, CAM identity, ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from astrot2.demo import demo_alerts_dir  # noqa: E402
from astrot2.errors import ConfigError  # noqa: E402
from astrot2.features import FeatureConfig, build_inputs  # noqa: E402
from astrot2.gp import fit_gp  # noqa: E402
from astrot2.io import read_alerts  # noqa: E402
from astrot2.model import T2, PatchT2, T2Config, export_onnx  # noqa: E402

CONFIGS = {
    "lsst": T2Config(n_channels=6, n_extra=4),
    "ztf": T2Config(n_channels=2, n_extra=1),
    "ztf_std_2blocks": T2Config(n_channels=4, n_extra=1, n_blocks=2, n_heads=8),
    "ztf_hidden_head": T2Config(n_channels=2, n_extra=3, head_hidden=16),
}


@pytest.fixture(scope="module")
def real_inputs():
    """GP features of the 67 real ZTF alerts shipped with the package (g, r)."""
    batch = read_alerts(demo_alerts_dir())
    x, extra = build_inputs(batch, fit_gp(batch),
                            FeatureConfig(bands=("g", "r"), use_redshift=False))
    return torch.from_numpy(x), torch.from_numpy(extra)


def test_published_size():
    assert sum(p.numel() for p in T2(T2Config()).parameters()) == 13_390


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shapes_finite_and_every_parameter_learns(name):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    model = T2(cfg)
    x = torch.randn(8, cfg.n_tokens, cfg.n_channels)
    extra = torch.randn(8, cfg.n_extra) if cfg.n_extra else None
    logits = model(x, extra)
    assert logits.shape == (8, cfg.n_classes) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.arange(8) % cfg.n_classes).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_cam_sums_to_the_logits(real_inputs):
    x, extra = real_inputs
    torch.manual_seed(1)
    model = T2(CONFIGS["ztf"]).eval()
    with torch.no_grad():
        cam = model.class_activation_map(x, extra)  # (B, T, K)
        w_extra = model.head.weight[:, model.config.d_model:]
        rebuilt = cam.mean(dim=1) + extra @ w_extra.T + model.head.bias
        torch.testing.assert_close(rebuilt, model(x, extra), rtol=1e-5, atol=1e-5)


def test_cam_needs_a_linear_head(real_inputs):
    from astrot2.errors import ModelError

    x, _ = real_inputs
    model = T2(T2Config(n_channels=2, n_extra=1, head_hidden=8)).eval()
    with pytest.raises(ModelError, match="linear head"):
        model.class_activation_map(x, torch.zeros(len(x), 1))


def test_a_manifest_without_head_hidden_is_a_linear_head():
    """``head_hidden`` came after the first manifests: absent means the linear head, every
    other size absent is still refused."""
    from astrot2.errors import ModelError

    section = T2Config(n_extra=2).to_dict()
    del section["head_hidden"]
    assert T2Config.from_dict(section) == T2Config(n_extra=2)
    del section["d_model"]
    with pytest.raises(ModelError, match="d_model"):
        T2Config.from_dict(section)


#: Every network architecture the runtime loads, as a small model on the real inputs' grid.
ARCHITECTURES = {
    "T2": lambda: T2(CONFIGS["ztf"]),
    "PatchT2": lambda: PatchT2(T2Config(n_tokens=25, n_channels=8, n_extra=1, n_heads=4), 4),
    "PatchT2 hidden head": lambda: PatchT2(T2Config(n_tokens=25, n_channels=8, n_extra=1,
                                                    n_heads=4, head_hidden=16), 4),
}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_onnx_matches_pytorch_on_real_inputs(arch, real_inputs, tmp_path):
    """``export_onnx``, the one exporter, for every architecture: ONNX Runtime agrees with
    PyTorch on the GP grid (``input_shape``) with a dynamic batch axis, and
    ``load_onnx_weights`` maps the file back onto a fresh model."""
    from astrot2.compress.finetune import load_onnx_weights

    x, extra = real_inputs  # (67, 100, 2): grid steps, g and r
    torch.manual_seed(2)
    model = ARCHITECTURES[arch]().eval()
    with torch.no_grad():  # trained-like weights (fresh LayerNorms are equal constants)
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape))
    assert model.input_shape == tuple(x.shape[1:])
    path = tmp_path / "t2.onnx"
    export_onnx(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy(), "extra": extra.numpy()})[0]
    with torch.no_grad():
        want = model(x, extra).numpy()
    assert np.abs(got - want).max() <= 1e-5
    one = session.run(None, {"x": x[:1].numpy(), "extra": extra[:1].numpy()})[0]
    np.testing.assert_allclose(one, want[:1], atol=1e-5)  # dynamic batch axis
    other = load_onnx_weights(ARCHITECTURES[arch](), str(path))
    for (name, p), q in zip(model.state_dict().items(), other.state_dict().values(),
                            strict=True):
        assert torch.equal(p, q), name


def test_config_errors():
    with pytest.raises(ConfigError):
        T2Config(d_model=30, n_heads=16)
    with pytest.raises(ConfigError, match="head_hidden"):
        T2Config(head_hidden=-1)
    with pytest.raises(ValueError, match="extra features"):
        T2(T2Config(n_extra=2))(torch.zeros(1, 100, 6))

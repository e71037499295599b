"""t2, the Time-Series Transformer (Allam & McEwen), in PyTorch (training side only).

Input: the GP mean (and optionally std) on a regular grid, shape (B, T, C) with T time
steps and C channels (bands, or bands x {mean, std}); optional per-object extra features
(B, E) such as host photo-z and its error, concatenated *after* pooling (the published
model appended them as extra time steps, which duplicated them).

    (B, T, C) -conv embedding (kernel 1) + ReLU-> (B, T, d) * sqrt(d) + sinusoidal PE
    -> n_blocks x post-norm encoder block [MHSA -> dropout -> +res -> LayerNorm;
                                           FFN -> dropout -> +res -> LayerNorm]
    -> global average pooling over T -> (B, d) [|| extra (B, E)] -> dropout -> dense
    -> logits (B, K)

With the defaults (d=32, 16 heads, FFN 128, one block) and (T, C, K) = (100, 6, 14) the
model has 13,390 parameters, as published.  ``forward_features`` / ``forward_head`` split
the network at the pooling, so class activation maps are ``features @ W_head[:d]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from astrot2.errors import ConfigError, ModelError
from astrot2.manifest import dataclass_from

__all__ = ["T2", "PatchT2", "T2Config", "export_onnx"]


@dataclass(frozen=True)
class T2Config:
    """Sizes of a t2 model (all of them; nothing is inferred from data)."""

    n_tokens: int = 100  # tokens the encoder sees (GP grid steps, / patch for PatchT2)
    n_channels: int = 6  # input channels per step (bands, or bands x {mean, std})
    n_extra: int = 0  # per-object features concatenated after pooling
    n_classes: int = 14
    d_model: int = 32  # embedding width
    n_heads: int = 16  # attention heads (head width d_model / n_heads)
    d_ff: int = 128  # feed-forward hidden width
    n_blocks: int = 1  # encoder blocks
    dropout: float = 0.1
    layer_norm_eps: float = 1e-6
    head_hidden: int = 0  # hidden units of the head (0: one linear layer)

    #: Sizes added after the first manifests: absent means the behaviour of before.
    OPTIONAL: ClassVar[dict[str, object]] = {"head_hidden": 0}

    def __post_init__(self) -> None:
        for name in ("n_tokens", "n_channels", "n_classes", "d_model", "n_heads", "d_ff",
                     "n_blocks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model {self.d_model} is not a multiple of n_heads "
                              f"{self.n_heads}")
        if self.head_hidden < 0:
            raise ConfigError(f"head_hidden must be >= 0, got {self.head_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, object]:
        """Plain dict, for manifests."""
        return asdict(self)

    @classmethod
    def from_dict(cls, section: dict[str, object], where: str = "model") -> T2Config:
        """The sizes recorded in a manifest's ``model`` section (other keys, such as
        ``architecture``, are left to the caller).

        Raises
        ------
        ModelError
            A size is missing (e.g. ``model.n_tokens`` in a manifest written before the
            rename from ``n_steps``): nothing is filled with today's defaults.
        """
        names = {f.name for f in fields(cls)}
        return dataclass_from(cls, {k: v for k, v in section.items() if k in names},
                               f"{where} (the network's sizes)")


def sinusoidal_encoding(n_tokens: int, d_model: int) -> torch.Tensor:
    """Vaswani et al.'s positional encoding, shape (n_tokens, d_model)."""
    pos = torch.arange(n_tokens, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / d_model)  # (T, d/2)
    pe = torch.zeros(n_tokens, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe


class SelfAttention(nn.Module):
    """Multi-head self-attention (no mask: every step sees every step)."""

    def __init__(self, config: T2Config) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.d_model = config.d_model
        self.head_size = config.d_model // config.n_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[0], x.shape[1]
        h, hs, d = self.n_heads, self.head_size, self.d_model
        q, k, v = self.qkv(x).split(d, dim=2)  # (B, T, d) each
        q = q.view(b, t, h, hs).transpose(1, 2)  # (B, h, T, hs)
        k = k.view(b, t, h, hs).transpose(1, 2)
        v = v.view(b, t, h, hs).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B, h, T, hs)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, d)
        return self.proj(y)


class FeedForward(nn.Module):
    """Position-wise MLP d -> d_ff -> d with ReLU."""

    def __init__(self, config: T2Config) -> None:
        super().__init__()
        self.up = nn.Linear(config.d_model, config.d_ff)
        self.down = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)))


class EncoderBlock(nn.Module):
    """Post-norm transformer encoder block, as in t2."""

    def __init__(self, config: T2Config) -> None:
        super().__init__()
        self.attn = SelfAttention(config)
        self.ffn = FeedForward(config)
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.attn(x)))  # (B, T, d)
        return self.norm2(x + self.drop(self.ffn(x)))


class T2(nn.Module):
    """The Time-Series Transformer classifier; returns logits (softmax outside)."""

    def __init__(self, config: T2Config) -> None:
        super().__init__()
        self.config = config
        # A Conv1D with kernel 1 over time is a Linear over channels at every step.
        self.embed = nn.Linear(config.n_channels, config.d_model)
        self.register_buffer("pos", sinusoidal_encoding(config.n_tokens, config.d_model),
                             persistent=False)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_blocks))
        self.drop = nn.Dropout(config.dropout)
        width = config.d_model + config.n_extra
        if config.head_hidden:  # pooled features and extras mixed before the logits
            self.hidden = nn.Linear(width, config.head_hidden)
            width = config.head_hidden
        self.head = nn.Linear(width, config.n_classes)

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(T, C)`` of the input ``x`` (B, T, C): grid steps and channels per step."""
        return self.config.n_tokens, self.config.n_channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step features before pooling: (B, T, C) -> (B, T, d)."""
        h = F.relu(self.embed(x)) * math.sqrt(self.config.d_model)  # (B, T, d)
        h = h + self.pos[: x.shape[1]]
        for block in self.blocks:
            h = block(h)
        return h

    def forward_head(self, features: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """Pool, append extra features, classify: (B, T, d), (B, E) -> logits (B, K)."""
        pooled = features.mean(dim=1)  # (B, d)
        if self.config.n_extra:
            pooled = torch.cat([pooled, extra], dim=1)  # (B, d + E)
        if self.config.head_hidden:
            pooled = F.relu(self.hidden(self.drop(pooled)))  # (B, H)
        return self.head(self.drop(pooled))

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) for inputs (B, T, C) and extra features (B, E) if configured."""
        if self.config.n_extra and extra is None:
            raise ValueError(f"this model needs {self.config.n_extra} extra features per object")
        return self.forward_head(self.forward_features(x), extra)

    def class_activation_map(self, x: torch.Tensor, extra: torch.Tensor | None = None
                             ) -> torch.Tensor:
        """CAM (B, T, K): per-step contribution to each logit (before bias and extras).

        ``cam.mean(dim=1) + extra @ W_extra.T + bias == logits`` (in eval mode).

        Raises
        ------
        ModelError
            The head has a hidden layer (``head_hidden``): the logits are not a sum over
            steps.
        """
        if self.config.head_hidden:
            raise ModelError("class activation maps need a linear head; this network's "
                             f"head has {self.config.head_hidden} hidden units")
        features = self.forward_features(x)  # (B, T, d)
        w = self.head.weight[:, : self.config.d_model]  # (K, d)
        return features @ w.T  # (B, T, K)


class PatchT2(nn.Module):
    """t2 on patches of ``patch`` consecutive time steps: (B, T, C) -> (B, T/p, p*C).

    The GP grid (and so the manifest's GP settings) is unchanged; the transformer sees
    ``patch`` times fewer tokens, so attention costs ``patch**2`` times less.
    """

    def __init__(self, config: T2Config, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.t2 = T2(config)
        self.config = config

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(T, C)`` of the input ``x``: the GP grid, ``patch`` grid steps per token."""
        return self.config.n_tokens * self.patch, self.config.n_channels // self.patch

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        b, t, c = x.shape
        return self.t2(x.reshape(b, t // self.patch, self.patch * c), extra)  # (B, K)


def export_onnx(model: T2 | PatchT2, path: str, opset: int = 17) -> None:
    """Export ``model`` (eval mode) to ONNX with a dynamic batch axis: the one exporter of
    every network the runtime loads.

    Inputs ``x`` (B, T, C) with ``(T, C) = model.input_shape`` and, when the model has
    extra features, ``extra`` (B, E); output ``logits`` (B, K).
    """
    model = model.eval()
    cfg = model.config
    x = torch.zeros(2, *model.input_shape)
    names = ["x"]
    args: tuple[torch.Tensor, ...] = (x,)
    if cfg.n_extra:
        args = (x, torch.zeros(2, cfg.n_extra))
        names.append("extra")
    dynamic = {name: {0: "batch"} for name in [*names, "logits"]}
    torch.onnx.export(model, args, path, input_names=names, output_names=["logits"],
                      dynamic_axes=dynamic, opset_version=opset, dynamo=False)

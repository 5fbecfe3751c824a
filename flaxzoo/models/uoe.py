"""Union of Experts models: causal LM, vision classifier, LRA classifier, Swin with UoME MLPs.

Every model is SMHA (heads as experts) + UoME (MLP blocks as experts) on the shared layers.
`mode="faithful"` reproduces the authors' released behaviour (unweighted union, router
without gradient); `mode="trained"` weights by the gate and adds router losses (see
`flaxzoo.layers.experts.router_loss`).
`expert_impl="grouped"` (and `dropless=True`) switches every UoME layer to the grouped-GEMM path of
`flaxzoo.layers.grouped_experts`; SMHA keeps its capacity rectangle (see that module's docstring).
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import LayerNorm, Linear, RMSNorm, host_init, param_init
from flaxzoo.layers.conv import conv2d
from flaxzoo.layers.drop_path import DropPath, drop_path_rates
from flaxzoo.layers.experts import RoutePlan, UoME
from flaxzoo.layers.grouped_experts import check_expert_impl
from flaxzoo.layers.smha import SMHA
from flaxzoo.models.registry import register
from flaxzoo.validate import check_image_batch, check_mask, check_rates, check_sizes, check_token_ids

_CONVERTER = "flaxzoo.models.convert.uoe:convert"
_EMBED_INIT = host_init.normal(stddev=0.02)


def _embed(num: int, dim: int, rngs: nnx.Rngs) -> nnx.Embed:
    return nnx.Embed(num, dim, embedding_init=param_init(_EMBED_INIT, ("vocab", "embed")), rngs=rngs)


# ----------------------------------------------------------------------------------------------
# Causal language model (the paper's WikiText-103 model without Transformer-XL memory).

class UoELMBlock(nnx.Module):
    """SMHA (causal, RoPE) + UoME. Post-norm LayerNorm(x + f(x)) as the reference (pre_lnorm=False),
    or pre-norm x + f(LayerNorm(x)) with `pre_norm=True`."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, head_top_k: int | None, num_experts: int,
                 top_k: int, head_capacity: float | None, capacity: float | None, mode: str, pre_norm: bool,
                 rope: str, uome_route_over: str, dropout: float, expert_impl: str = "capacity",
                 dropless: bool = False, dtype=None, rngs: nnx.Rngs):
        self.pre_norm, self.uome_route_over = pre_norm, uome_route_over
        self.attn = SMHA(dim, num_heads, head_top_k, capacity=head_capacity, causal=True, rope=rope, mode=mode,
                         route_norm="group", route_eps=1e-8, dtype=dtype, rngs=rngs)
        self.norm1 = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)
        self.mlp = UoME(dim, hidden_dim, num_experts, top_k, capacity=capacity, mode=mode, route_norm="group",
                        route_eps=1e-8, expert_impl=expert_impl, dropless=dropless, dtype=dtype, rngs=rngs)
        self.norm2 = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)

    def _mlp(self, x: jax.Array) -> jax.Array:
        if self.uome_route_over == "batch":  # the reference feeds UoME (time, batch, d): experts pick batch rows
            return self.mlp(x.swapaxes(0, 1)).swapaxes(0, 1)
        return self.mlp(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.norm1(x)))
            return x + self.drop(self._mlp(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self._mlp(x)))


class UoELM(nnx.Module):
    """Token ids (B, L) -> next-token logits (B, L, vocab)."""

    def __init__(self, vocab_size: int, dim: int, depth: int, num_heads: int, hidden_dim: int, *,
                 head_top_k: int | None = None, num_experts: int = 4, top_k: int = 2,
                 head_capacity: float | None = None, capacity: float | None = None, mode: str = "faithful",
                 pre_norm: bool = False, rope: str = "slot", uome_route_over: str = "time",
                 tie_embeddings: bool = True, dropout: float = 0.0, expert_impl: str = "capacity",
                 dropless: bool = False, dtype=None, rngs: nnx.Rngs):
        check_expert_impl("UoELM", expert_impl, dropless)
        check_sizes("UoELM", 1, vocab_size=vocab_size, dim=dim, depth=depth, num_heads=num_heads,
                    hidden_dim=hidden_dim, num_experts=num_experts, top_k=top_k)
        check_rates("UoELM", dropout=dropout)
        if uome_route_over not in ("time", "batch"):
            raise ValueError(f"uome_route_over must be 'time' or 'batch', got {uome_route_over!r}.")
        self.dim, self.tie_embeddings, self.dtype = dim, tie_embeddings, dtype
        self.embed = _embed(vocab_size, dim, rngs)
        self.drop = nnx.Dropout(dropout, rngs=rngs)
        self.blocks = nnx.List([
            UoELMBlock(dim, num_heads, hidden_dim, head_top_k=head_top_k, num_experts=num_experts, top_k=top_k,
                       head_capacity=head_capacity, capacity=capacity, mode=mode, pre_norm=pre_norm, rope=rope,
                       uome_route_over=uome_route_over, dropout=dropout, expert_impl=expert_impl,
                       dropless=dropless, dtype=dtype, rngs=rngs)
            for _ in range(depth)])
        self.norm = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs) if pre_norm else None
        self.head = None if tie_embeddings else Linear(dim, vocab_size, axes=("embed", "vocab"), dtype=dtype, rngs=rngs)
        self.eval()

    def __call__(self, ids: jax.Array) -> jax.Array:
        check_token_ids(ids, name="UoELM token ids", vocab_size=self.embed.num_embeddings)
        x = self.embed(ids) * math.sqrt(self.dim)  # Transformer-XL scales embeddings by sqrt(d)
        if self.dtype is not None:
            x = x.astype(self.dtype)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        if self.norm is not None:
            x = self.norm(x)
        logits = self.embed.attend(x) if self.tie_embeddings else self.head(x)
        return logits.astype(jnp.float32)


# ----------------------------------------------------------------------------------------------
# Vision classifier (ours: the authors never released image-classification code).

class UoEViTBlock(nnx.Module):
    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, head_top_k: int | None, num_experts: int,
                 top_k: int, head_capacity: float | None, capacity: float | None, mode: str, drop_path: float,
                 expert_impl: str = "capacity", dropless: bool = False, dtype=None, rngs: nnx.Rngs):
        # Per-token ("experts") score normalisation: one image's routing never depends on another's.
        self.norm1 = LayerNorm(dim, eps=1e-6, dtype=dtype, rngs=rngs)
        self.attn = SMHA(dim, num_heads, head_top_k, capacity=head_capacity, mode=mode, route_norm="experts",
                         dtype=dtype, rngs=rngs)
        self.norm2 = LayerNorm(dim, eps=1e-6, dtype=dtype, rngs=rngs)
        self.mlp = UoME(dim, hidden_dim, num_experts, top_k, capacity=capacity, mode=mode, route_norm="experts",
                        expert_impl=expert_impl, dropless=dropless, dtype=dtype, rngs=rngs)
        self.drop_path = DropPath(drop_path, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class UoEViT(nnx.Module):
    """NHWC images -> logits. Patch embedding + learned positions + UoE blocks, mean-pooled (no class token,
    so every routed position is an image patch)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 dim: int = 192, depth: int = 12, num_heads: int = 4, mlp_ratio: float = 4.0, *,
                 head_top_k: int | None = None, num_experts: int = 4, top_k: int = 2,
                 head_capacity: float | None = None, capacity: float | None = None, mode: str = "trained",
                 drop_path_rate: float = 0.0, expert_impl: str = "capacity", dropless: bool = False, dtype=None,
                 rngs: nnx.Rngs):
        check_expert_impl("UoEViT", expert_impl, dropless)
        check_sizes("UoEViT", 1, img_size=img_size, patch_size=patch_size, in_chans=in_chans, dim=dim, depth=depth,
                    num_heads=num_heads, num_experts=num_experts, top_k=top_k)
        check_sizes("UoEViT", 0, num_classes=num_classes)
        check_rates("UoEViT", drop_path_rate=drop_path_rate)
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}.")
        self.patch_size, self.img_size = patch_size, img_size
        n = (img_size // patch_size) ** 2
        self.patch_embed = conv2d(in_chans, dim, patch_size, stride=patch_size, padding="VALID", dtype=dtype, rngs=rngs)
        self.pos_embed = nnx.Param(param_init(_EMBED_INIT, (None, "length", "embed"))(rngs.params(), (1, n, dim)))
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nnx.List([
            UoEViTBlock(dim, num_heads, int(dim * mlp_ratio), head_top_k=head_top_k, num_experts=num_experts,
                        top_k=top_k, head_capacity=head_capacity, capacity=capacity, mode=mode, drop_path=rates[i],
                        expert_impl=expert_impl, dropless=dropless, dtype=dtype, rngs=rngs) for i in range(depth)])
        self.norm = LayerNorm(dim, eps=1e-6, dtype=dtype, rngs=rngs)
        self.dim, self.dtype = dim, dtype
        self.reset_classifier(num_classes, rngs=rngs)
        self.eval()

    def reset_classifier(self, num_classes: int, *, rngs: nnx.Rngs | None = None) -> None:
        """Replace the classifier with a fresh one for `num_classes` (0: none, the model returns pooled features)."""
        self.num_classes = num_classes
        self.head = Linear(self.dim, num_classes, axes=("embed", None), dtype=self.dtype,
                           rngs=rngs if rngs is not None else nnx.Rngs(0)) if num_classes else None

    def forward_features(self, x: jax.Array) -> jax.Array:
        """NHWC images -> normalised patch tokens (B, N, dim)."""
        check_image_batch(x, name="UoEViT input", channels=self.patch_embed.in_features, size=self.img_size,
                          size_hint="Its learned positions fix the size (img_size).")
        b = x.shape[0]
        x = self.patch_embed(x).reshape(b, -1, self.pos_embed.shape[-1]) + self.pos_embed[...]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: jax.Array, pre_logits: bool = False) -> jax.Array:
        """Tokens -> logits (mean over tokens, then the classifier); `pre_logits=True`: the pooled tokens."""
        x = x.mean(1)
        return x if self.head is None or pre_logits else self.head(x)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward_head(self.forward_features(x))


# ----------------------------------------------------------------------------------------------
# LRA classifier (the authors' ListOps model, for checkpoint parity).

class LRABlock(nnx.Module):
    """X += SMHA(RMSNorm(X), mask); X += UoME(RMSNorm(X)), as the reference's ParallelTransformer."""

    def __init__(self, dim: int, hidden_dim: int, *, attn_experts: int, attn_top_k: int, num_experts: int,
                 top_k: int, epsilon: float, capacity: float, head_capacity: float | None,
                 expert_impl: str = "capacity", dropless: bool = False, dtype=None, rngs: nnx.Rngs):
        self.norm1 = RMSNorm(dim, eps=1e-6, dtype=dtype, rngs=rngs)
        self.attn = SMHA(dim, attn_experts, attn_top_k, capacity=head_capacity, pre_rotation=True,
                         route_norm="experts", route_eps=epsilon, route_scale=capacity, dtype=dtype, rngs=rngs)
        self.norm2 = RMSNorm(dim, eps=1e-6, dtype=dtype, rngs=rngs)
        self.mlp = UoME(dim, hidden_dim, num_experts, top_k, capacity=0.5, route_norm="group", route_eps=epsilon,
                        route_scale=capacity, expert_impl=expert_impl, dropless=dropless, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask, plans: tuple[RoutePlan | None, RoutePlan | None] = (None, None), trace=None):
        a = self.attn(self.norm1(x), mask=mask, plan=plans[0])
        x = x + a
        m = self.mlp(self.norm2(x), plan=plans[1])
        if trace is not None:
            trace.update(smha_output=a, uome_output=m)
        return x + m


class UoELRAClassifier(nnx.Module):
    """Token ids (B, L) and mask (B, L) -> logits. L must equal max_seq_len, as in the reference.

    The reference SMHA's K is data dependent (dropless); here it is static, `head_capacity` * L
    (default attn_top_k / attn_experts, i.e. capacity factor 1). Exact reference routing needs the
    plans injected (`plans=`) or K from `flaxzoo.layers.experts.reference_capacity`.
    """

    def __init__(self, vocab_size: int = 512, max_seq_len: int = 2048, dim: int = 64, hidden_dim: int = 128,
                 depth: int = 2, num_classes: int = 10, *, attn_experts: int = 2, attn_top_k: int = 1,
                 num_experts: int = 4, top_k: int = 2, epsilon: float = 1.0, capacity: float = 1.0,
                 head_capacity: float | None = None, head_hidden_dim: int = 128, expert_impl: str = "capacity",
                 dropless: bool = False, dtype=None, rngs: nnx.Rngs):
        check_expert_impl("UoELRAClassifier", expert_impl, dropless)
        check_sizes("UoELRAClassifier", 1, vocab_size=vocab_size, max_seq_len=max_seq_len, dim=dim,
                    hidden_dim=hidden_dim, depth=depth, num_classes=num_classes, attn_experts=attn_experts,
                    attn_top_k=attn_top_k, num_experts=num_experts, top_k=top_k, head_hidden_dim=head_hidden_dim)
        self.max_seq_len = max_seq_len
        self.word_embeddings = _embed(vocab_size, dim, rngs)
        self.position_embeddings = _embed(max_seq_len, dim, rngs)
        self.blocks = nnx.List([
            LRABlock(dim, hidden_dim, attn_experts=attn_experts, attn_top_k=attn_top_k, num_experts=num_experts,
                     top_k=top_k, epsilon=epsilon, capacity=capacity, head_capacity=head_capacity,
                     expert_impl=expert_impl, dropless=dropless, dtype=dtype, rngs=rngs) for _ in range(depth)])
        self.norm = LayerNorm(dim, eps=1e-5, dtype=dtype, rngs=rngs)
        self.fc1 = Linear(dim, head_hidden_dim, axes=("embed", "mlp"), dtype=dtype, rngs=rngs)
        self.head_hidden_dim, self.dtype = head_hidden_dim, dtype
        self.reset_classifier(num_classes, rngs=rngs)

    def reset_classifier(self, num_classes: int, *, rngs: nnx.Rngs | None = None) -> None:
        """A fresh last layer (`fc2`) for `num_classes`; the hidden layer `fc1` is kept."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 for the LRA classifier, got {num_classes}.")
        self.num_classes = num_classes
        self.fc2 = Linear(self.head_hidden_dim, num_classes, axes=("mlp", None), dtype=self.dtype,
                          rngs=rngs if rngs is not None else nnx.Rngs(0))

    def __call__(self, ids: jax.Array, mask: jax.Array | None = None, *,
                 plans: Sequence[tuple[RoutePlan | None, RoutePlan | None]] | None = None,
                 trace: dict | None = None) -> jax.Array:
        """`plans[i] = (smha_plan, uome_plan)` injects routing; `trace` (a dict) receives hidden states."""
        return self.forward_head(self.forward_features(ids, mask, plans=plans, trace=trace))

    def forward_head(self, x: jax.Array, pre_logits: bool = False) -> jax.Array:
        """Token features (B, L, dim) -> logits; `pre_logits=True`: the hidden layer the classifier sees."""
        pooled = x.mean(1)  # over all L positions, padded ones included (as the reference)
        hidden = jax.nn.relu(self.fc1(pooled))
        return hidden if pre_logits else self.fc2(hidden)

    def forward_features(self, ids: jax.Array, mask: jax.Array | None = None, *,
                         plans: Sequence[tuple[RoutePlan | None, RoutePlan | None]] | None = None,
                         trace: dict | None = None) -> jax.Array:
        """Token ids (B, L) and mask -> normalised token features (B, L, dim), zero at masked positions."""
        check_token_ids(ids, name="UoELRAClassifier token ids", length=self.max_seq_len,
                        vocab_size=self.word_embeddings.num_embeddings)
        if mask is not None:
            check_mask(mask, name="UoELRAClassifier mask", like_shape=ids.shape)
        b, length = ids.shape
        mask = jnp.ones((b, length), jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
        x = self.word_embeddings(ids) + self.position_embeddings(jnp.arange(length))[None]
        for i, block in enumerate(self.blocks):
            sub = {} if trace is not None else None
            x = block(x, mask, plans[i] if plans is not None else (None, None), trace=sub)
            if trace is not None:
                trace.update({f"layer{i}_{k}": v for k, v in sub.items()}, **{f"layer{i}_output": x})
        x = self.norm(x) * mask[..., None]
        if trace is not None:
            trace["token_out"] = x
        return x


# ----------------------------------------------------------------------------------------------
# Swin with UoME MLPs.

class TokenUoME(nnx.Module):
    """UoME over a feature map (B, H, W, C): each image's H*W positions are the routing candidates."""

    def __init__(self, dim: int, hidden_dim: int, *, num_experts: int = 4, top_k: int = 2, mode: str = "trained",
                 capacity: float | None = None, expert_impl: str = "capacity", dropless: bool = False,
                 rngs: nnx.Rngs):
        self.uome = UoME(dim, hidden_dim, num_experts, top_k, capacity=capacity, mode=mode, route_norm="experts",
                         expert_impl=expert_impl, dropless=dropless, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        shape = x.shape
        return self.uome(x.reshape(shape[0], -1, shape[-1])).reshape(shape)


def swin_uoe(*, num_experts: int = 4, top_k: int = 2, mode: str = "trained", capacity: float | None = None,
             expert_impl: str = "capacity", dropless: bool = False, rngs: nnx.Rngs, **swin_kwargs):
    """A SwinTransformer whose every MLP is a UoME layer (window attention stays dense)."""
    from flaxzoo.models.swin import SwinTransformer

    check_expert_impl("swin_uoe", expert_impl, dropless)
    factory = functools.partial(TokenUoME, num_experts=num_experts, top_k=top_k, mode=mode, capacity=capacity,
                                expert_impl=expert_impl, dropless=dropless)
    return SwinTransformer(mlp_factory=factory, rngs=rngs, **swin_kwargs)


# ----------------------------------------------------------------------------------------------
# Presets.

def _lm(name, **kw):
    register(name, "uoe", UoELM, converter=_CONVERTER, info=dict(task="lm"), **kw)


# WikiText-103 setting of run_wt103.sh: 16 layers, d 400, 10 heads x 40 (top-5), d_inner 2100, 4 experts top-2.
# Vocabulary 267,735 (the WT103 word vocabulary); the reference uses an adaptive softmax, we a plain tied one.
_lm("uoe_lm_wt103", vocab_size=267735, dim=400, depth=16, num_heads=10, hidden_dim=2100, dropout=0.1)
_lm("uoe_lm_small", vocab_size=32000, dim=512, depth=8, num_heads=8, hidden_dim=2048)
_lm("uoe_lm_tiny", vocab_size=128, dim=64, depth=2, num_heads=4, hidden_dim=128)

_VIT_INFO = dict(task="classify", input_size=(224, 224, 3), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# ViT-Ti/S widths and depths; ViT-Ti's 3 heads become 4 so that top-2 of 4 heads matches the UoME experts.
register("uoe_vit_tiny_patch16_224", "uoe", UoEViT, converter=_CONVERTER, info=_VIT_INFO,
         dim=192, depth=12, num_heads=4, mlp_ratio=4.0)
register("uoe_vit_small_patch16_224", "uoe", UoEViT, converter=_CONVERTER, info=_VIT_INFO,
         dim=384, depth=12, num_heads=6, head_top_k=3, mlp_ratio=4.0)
register("uoe_vit_test_tiny", "uoe", UoEViT, converter=_CONVERTER, info=dict(_VIT_INFO, input_size=(32, 32, 3)),
         img_size=32, patch_size=8, num_classes=10, dim=32, depth=2, num_heads=4, mlp_ratio=2.0)

# The authors' released ListOps checkpoint (an early one: test accuracy 0.19 at step ~379, from its log).
_LRA_WEIGHTS = dict(
    url="https://github.com/YujiaoYang-work/UoE/raw/5f2306b/long_range_modeling/LRA_chks/default_output.model",
    file="uoe_lra_listops.pth", license="not stated in the repository; check it before redistributing",
    source="YujiaoYang-work/UoE (the authors' code), long_range_modeling/LRA_chks/default_output.model",
    notes="a torch file (reading it needs torch), saved as uoe_lra_listops.pth; an early checkpoint, not a final model")
register("uoe_lra_listops", "uoe", UoELRAClassifier, converter=_CONVERTER,
         info=dict(task="lra_listops", input_size=(2048,), weights=_LRA_WEIGHTS))

register("swin_uoe_tiny_patch4_window7_224", "uoe", swin_uoe, info=dict(_VIT_INFO, crop_pct=0.9),
         img_size=224, patch_size=4, window_size=7, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
register("swin_uoe_test_tiny", "uoe", swin_uoe, info=dict(_VIT_INFO, input_size=(64, 64, 3)),
         img_size=64, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1), num_heads=(2, 4), num_classes=10)

"""Shared building blocks. One concept a file; every model family builds on these."""
from flaxzoo.layers.linear import Linear, param_init
from flaxzoo.layers.norm import LayerNorm, RMSNorm
from flaxzoo.layers.drop_path import DropPath, drop_path_rates
from flaxzoo.layers.mlp import Mlp, GatedMlp, gelu_exact, gelu_tanh
from flaxzoo.layers.window import (
    pad_to_multiple,
    window_partition,
    window_unpartition,
    relative_position_index,
    shifted_window_mask,
)
from flaxzoo.layers.attention import dot_product_attention
from flaxzoo.layers.position import RelativePositionBias, ContinuousPositionBias

__all__ = [
    "Linear", "param_init", "LayerNorm", "RMSNorm", "DropPath", "drop_path_rates",
    "Mlp", "GatedMlp", "gelu_exact", "gelu_tanh", "pad_to_multiple", "window_partition",
    "window_unpartition", "relative_position_index", "shifted_window_mask",
    "dot_product_attention", "RelativePositionBias", "ContinuousPositionBias",
]

"""flaxzoo: a JAX/Flax NNX model zoo for vision and language, with timm's front door.

    import flaxzoo
    model = flaxzoo.create_model("swin_tiny_patch4_window7_224")                 # random init
    model = flaxzoo.create_model("swin_tiny_patch4_window7_224", pretrained=True)  # released weights, from the cache
    backbone = flaxzoo.create_model("swin_tiny_patch4_window7_224", features_only=True, out_indices=(1, 2, 3))
    flaxzoo.list_models("maxim*", pretrained=True)
    model = flaxzoo.load_pretrained("runs/textures/model.safetensors")            # a training run's weights
    model = flaxzoo.load_pretrained("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224.pth")
"""
from flaxzoo import compile_options
from flaxzoo.models.registry import cache_dir, create_model, get_spec, list_models, load_pretrained

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_pretrained", "get_spec", "cache_dir"]

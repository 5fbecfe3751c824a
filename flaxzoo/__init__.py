"""flaxzoo: a JAX/Flax NNX model zoo for vision and language.

    import flaxzoo
    model = flaxzoo.create_model("swin_tiny_patch4_window7_224")
    flaxzoo.list_models("maxim*")
    model = flaxzoo.load_pretrained("swin_tiny_patch4_window7_224", "model.safetensors")
"""
from flaxzoo.models.registry import create_model, list_models, load_pretrained, get_spec

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_pretrained", "get_spec"]

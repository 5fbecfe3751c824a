"""data: pipelines (`pipeline`), transforms, augmentation, restoration pairs, text, offline sets."""
from flaxzoo.data.image_transform import create_transform

__all__ = ["create_transform"]

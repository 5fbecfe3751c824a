"""Convert a reference checkpoint into flaxzoo-native safetensors: the same program as `flaxzoo-convert`.

    python scripts/convert.py swin_tiny_patch4_window7_224 swin_tiny.safetensors swin_tiny_flaxzoo.safetensors

See `python scripts/convert.py --help`.
"""
import sys

from flaxzoo.scripts.convert import main

if __name__ == "__main__":
    sys.exit(main())

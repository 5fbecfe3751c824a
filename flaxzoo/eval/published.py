"""Published figures the evaluators print beside ours, and the README model table quotes.

Sources (see ../shared/reference/): MAXIM from the official google-research/maxim README (per-set
deraining numbers, Y channel, from the paper's table as quoted by PromptRestorer); Swin V1 from the
microsoft/Swin-Transformer README (ImageNet-1k val, top-1 and top-5 where given; base/large with their
default ImageNet-22k -> 1k weights), Swin V2 from the same README (top-1 only); Union of Experts: the
paper's abstract claims only (relative, no absolute table numbers are reproduced here).

`lookup(model, dataset, split)` -> {"psnr", "ssim"} or {"top1"[, "top5"]} plus "source", or None.
"""
from __future__ import annotations

# (task, benchmark) -> (PSNR dB, SSIM) of the released MAXIM checkpoint for that task.
MAXIM = {
    ("denoising", "SIDD"): (39.96, 0.960),
    ("denoising", "DND"): (39.84, 0.954),
    ("deblurring", "GoPro"): (32.86, 0.961),
    ("deblurring", "HIDE"): (32.83, 0.956),
    ("deblurring", "REDS-val-300"): (28.93, 0.865),
    ("deblurring", "RealBlur-R"): (39.45, 0.962),
    ("deblurring", "RealBlur-J"): (32.84, 0.935),
    ("deraining", "Rain13k"): (33.24, 0.933),  # mean of the five test sets below
    ("deraining", "Test100"): (31.17, 0.922),
    ("deraining", "Rain100H"): (30.81, 0.903),
    ("deraining", "Rain100L"): (38.06, 0.977),
    ("deraining", "Test2800"): (33.80, 0.943),
    ("deraining", "Test1200"): (32.37, 0.922),
    ("deraining", "Raindrop"): (31.87, 0.935),
    ("dehazing", "SOTS-Indoor"): (38.11, 0.991),
    ("dehazing", "SOTS-Outdoor"): (34.19, 0.985),
    ("enhancement", "LOL"): (23.43, 0.863),
    ("enhancement", "FiveK"): (26.15, 0.945),
}
MAXIM_SOURCE = "google-research/maxim README (paper Tables 1-5)"

# flaxzoo preset -> ImageNet-1k val accuracy (percent) of its released weights.
SWIN = {
    "swin_tiny_patch4_window7_224": {"top1": 81.2, "top5": 95.5},
    "swin_small_patch4_window7_224": {"top1": 83.2, "top5": 96.2},
    "swin_base_patch4_window7_224": {"top1": 85.2, "top5": 97.5},  # 22k -> 1k
    "swin_large_patch4_window7_224": {"top1": 86.3, "top5": 97.9},  # 22k -> 1k
    "swin_base_patch4_window12_384": {"top1": 86.4, "top5": 98.0},  # 22k -> 1k
    "swin_large_patch4_window12_384": {"top1": 87.3, "top5": 98.2},  # 22k -> 1k
    "swinv2_tiny_window8_256": {"top1": 81.8},
    "swinv2_small_window8_256": {"top1": 83.7},
    "swinv2_base_window8_256": {"top1": 84.2},
    "swinv2_tiny_window16_256": {"top1": 82.8},
    "swinv2_small_window16_256": {"top1": 84.1},
    "swinv2_base_window16_256": {"top1": 84.6},
    "swinv2_base_window12to16_192to256": {"top1": 86.2},
    "swinv2_large_window12to16_192to256": {"top1": 86.9},
    "swinv2_base_window12to24_192to384": {"top1": 87.1},
    "swinv2_large_window12to24_192to384": {"top1": 87.6},
}
SWIN_SOURCE = "microsoft/Swin-Transformer README (ImageNet-1k val)"

# The UoE paper's abstract (arXiv 2503.02495v3): relative claims, not absolute figures.
UOE_CLAIMS = {
    "language modelling (WikiText-103, One Billion Word)":
        "average perplexity 2.38 lower than the best MoE baseline, at 76% of its FLOPs",
    "Long Range Arena": "average score at least 0.68% higher than every baseline, at 50% of the best MoE's FLOPs",
    "image classification": "average accuracy +1.75% over the best baseline at comparable FLOPs",
}
UOE_SOURCE = "Union of Experts, arXiv 2503.02495v3, abstract"

# Our benchmark datasets (TFDS name, split) -> the name of the benchmark in the tables above.
BENCHMARKS = {
    ("sidd", "validation"): "SIDD", ("sidd", "benchmark"): "SIDD", ("dnd", "benchmark"): "DND",
    ("gopro", "test"): "GoPro", ("hide", "test"): "HIDE",
    ("realblur", "j_test"): "RealBlur-J", ("realblur", "r_test"): "RealBlur-R",
    ("rain13k", "test100"): "Test100", ("rain13k", "rain100h"): "Rain100H", ("rain13k", "rain100l"): "Rain100L",
    ("rain13k", "test2800"): "Test2800", ("rain13k", "test1200"): "Test1200",
    ("raindrop", "test_a"): "Raindrop",
    ("sots", "indoor"): "SOTS-Indoor", ("sots", "outdoor"): "SOTS-Outdoor",
    ("lol", "test"): "LOL", ("fivek", "test"): "FiveK",
}
IMAGENET = ("imagenet2012", "validation")


def benchmark_name(dataset: str, split: str) -> str | None:
    """('sidd', 'validation') -> 'SIDD'; None for a dataset no table reports."""
    return BENCHMARKS.get((dataset.split("/")[0].split(":")[0], split))


def lookup(model: str, dataset: str, split: str) -> dict | None:
    """The published figure for `model` (a flaxzoo preset) on (dataset, split), or None if none is known.

    MAXIM: the released checkpoint's task (the preset's `task`) on that benchmark, e.g.
    maxim_s3_denoising_sidd on ('sidd', 'validation') -> {'psnr': 39.96, 'ssim': 0.96, 'source': ...}.
    Swin: the preset's ImageNet-1k top-1/top-5 on ('imagenet2012', 'validation')."""
    from flaxzoo.models.registry import get_spec

    if model in SWIN:
        return {**SWIN[model], "source": SWIN_SOURCE} if (dataset, split) == IMAGENET else None
    try:
        task = get_spec(model).info.get("task")
    except ValueError:  # an unregistered name has no published figure
        return None
    bench = benchmark_name(dataset, split)
    if task is None or bench is None or (task, bench) not in MAXIM:
        return None
    psnr, ssim = MAXIM[(task, bench)]
    return {"psnr": psnr, "ssim": ssim, "source": MAXIM_SOURCE, "benchmark": bench}

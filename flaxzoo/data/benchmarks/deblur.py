"""Motion deblurring: GoPro, HIDE (GoPro-trained models are scored on it), RealBlur-J / RealBlur-R."""
from __future__ import annotations

import os

from flaxzoo.data.benchmarks.common import PairedBenchmark, images_in, pair_folders, stem, subfolders


class Gopro(PairedBenchmark):
    """GoPro (Nah et al., CVPR 2017), GOPRO_Large: 1111 test pairs (1280x720) in 11 scenes.
    Names: "<scene>/<frame>". Split `test` (and `train` if present)."""

    HOMEPAGE = "https://seungjunnah.github.io/Datasets/gopro (GOPRO_Large.zip)"
    LAYOUT = """
    <manual_dir>/test/<scene>/blur/<frame>.png     blurred input (blur_gamma/ is ignored)
    <manual_dir>/test/<scene>/sharp/<frame>.png    sharp target, same file name
    <manual_dir>/train/...                         (optional) the same for the training scenes
    """

    @classmethod
    def examples(cls, root):
        out = {}
        for split in ("test", "train"):
            scenes = subfolders(os.path.join(root, split))
            if not scenes:
                if split == "test":
                    raise cls.error(root, "test/ has no scene folders")
                continue
            out[split] = [p for s in scenes for p in pair_folders(
                cls, root, os.path.join(root, split, s, "blur"), os.path.join(root, split, s, "sharp"),
                prefix=f"{s}/")]
        return out


class Hide(PairedBenchmark):
    """HIDE (Shen et al., ICCV 2019): 2025 test pairs, close-ups and long shots. Names: "<subset>/<file>"."""

    HOMEPAGE = "https://github.com/joanshen0508/HA_deblur (HIDE_dataset)"
    LAYOUT = """
    <manual_dir>/test/test-close-ups/<name>.png    blurred inputs
    <manual_dir>/test/test-long-shot/<name>.png
    <manual_dir>/GT/<name>.png                     sharp targets, same file names
    """

    @classmethod
    def examples(cls, root):
        items = []
        for subset in ("test-close-ups", "test-long-shot"):
            folder = os.path.join(root, "test", subset)
            if not images_in(folder):
                raise cls.error(root, f"no images in test/{subset}/")
            items += pair_folders(cls, root, folder, os.path.join(root, "GT"), prefix=f"{subset}/")
        return {"test": items}


class Realblur(PairedBenchmark):
    """RealBlur (Rim et al., ECCV 2020): real blur, 980 test pairs per camera pipeline. Splits `j_test`
    (RealBlur-J, JPEG) and `r_test` (RealBlur-R, raw), from the official test lists, each built when its list
    is present. The published numbers use the official script's ECC alignment, which flaxzoo does not do."""

    HOMEPAGE = "http://cg.postech.ac.kr/research/realblur/ (RealBlur.tar.gz)"
    LAYOUT = """
    <manual_dir>/RealBlur_J_test_list.txt    lines "<gt path> <blur path>", relative to <manual_dir>
    <manual_dir>/RealBlur_R_test_list.txt
    <manual_dir>/RealBlur-J_ECC_IMCORR_centroid_itensity_ref/<scene>/{gt,blur}/*.png  (as the lists name them)
    <manual_dir>/RealBlur-R_BM3D_ECC_IMCORR_centroid_itensity_ref/<scene>/{gt,blur}/*.png
    """
    LISTS = {"j_test": "RealBlur_J_test_list.txt", "r_test": "RealBlur_R_test_list.txt"}

    @classmethod
    def examples(cls, root):
        out = {}
        for split, listname in cls.LISTS.items():
            path = os.path.join(root, listname)
            if not os.path.isfile(path):
                continue
            items = []
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    parts = line.split()
                    if len(parts) < 2:
                        raise cls.error(root, f"{listname} line {n} is not '<gt path> <blur path>'")
                    gt, blur = (os.path.join(root, p) for p in parts[:2])
                    for p in (gt, blur):
                        if not os.path.isfile(p):
                            raise cls.error(root, f"{listname} line {n} names {os.path.relpath(p, root)}, "
                                                  f"which is missing")
                    scene = os.path.basename(os.path.dirname(os.path.dirname(blur)))
                    items.append((f"{scene}/{stem(os.path.basename(blur))}", blur, gt))
            if not items:
                raise cls.error(root, f"{listname} lists no pairs")
            out[split] = items
        if not out:
            raise cls.error(root, "neither RealBlur_J_test_list.txt nor RealBlur_R_test_list.txt is there")
        return out

"""flaxzoo: a JAX/Flax NNX model zoo (MAXIM, Swin V1/V2, Union of Experts)."""
from setuptools import find_packages, setup

setup(
    name="flaxzoo",
    version="0.1.0",
    description="JAX/Flax NNX model zoo: MAXIM, Swin Transformer V1/V2, Union of Experts",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["flaxzoo", "flaxzoo.*"]),
    # Two small watertight meshes for the proxy-node fields (from pyvista's examples, MIT; see shapes/NOTICE).
    package_data={"flaxzoo.data": ["shapes/*.ply", "shapes/NOTICE"]},
    install_requires=[
        # Python 3.11 resolves jax 0.10.2 / flax 0.12.8; GPU hosts on 3.12 get 0.11.x.
        "jax>=0.10.2,<0.13",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.7,<0.3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "ml-collections>=1.0,<2",
        "tensorflow-datasets>=4.9.9,<5",
        "grain>=0.2.18,<0.3",
        "importlib_resources>=6",  # etils.epath needs it when TensorFlow is absent
        "safetensors>=0.4",
        "numpy>=1.26",
        "pillow>=10",
        "tensorboardX>=2.6",  # TensorBoard event files; needs protobuf only, not TensorFlow
        "tqdm>=4.66",  # the training progress bar
        "flatbuffers>=23",  # jax.export serialization (flaxzoo.export, format="jax"); 0.3 MB
    ],
    # The same programs as scripts/train.py, scripts/restore.py, scripts/convert.py.
    entry_points={
        "console_scripts": [
            "flaxzoo-train=flaxzoo.scripts.train:main",
            "flaxzoo-restore=flaxzoo.scripts.restore:main",
            "flaxzoo-convert=flaxzoo.scripts.convert:main",
            "flaxzoo-eval=flaxzoo.scripts.eval:main",
            "flaxzoo-interpret=flaxzoo.scripts.interpret:main",
            "flaxzoo-interpret-bench=flaxzoo.scripts.interpret_bench:main",
            "flaxzoo-export=flaxzoo.scripts.export:main",
            "flaxzoo-benchmark=flaxzoo.scripts.benchmark:main",
            "flaxzoo-bench-report=flaxzoo.scripts.bench_report:main",
            "flaxzoo-denoise-report=flaxzoo.scripts.denoise_report:main",
            "flaxzoo-fit-shape=flaxzoo.scripts.fit_shape:main",
        ],
    },
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "pytest-timeout>=2.2",  # a hung test fails with its stack instead of stalling CI
            "scikit-image>=0.24",  # real images that ship inside the wheel
            "trimesh>=4",  # mesh IO for the proxy-node field tests (pure Python, ~0.7 MB wheel)
        ],
        # 3D neural fields (proxy-node fields): mesh IO (trimesh), marching cubes (scikit-image; scipy comes
        # with it), the compactness plot (matplotlib). Exact SDFs are computed in numpy/scipy: no rtree, no VTK.
        "3d": [
            "trimesh>=4",
            "scikit-image>=0.24",
            "matplotlib>=3.8",
        ],
        # ONNX export's runtime side (about 200 MB with onnx-ir's sympy). The converter itself, jax2onnx
        # 0.17, pins orbax-checkpoint<0.11.37 against our >=0.12.8 (it never imports orbax), so pip cannot
        # install it alongside flaxzoo: `pip install --no-deps jax2onnx==0.17.1` after this extra (make
        # test-all does). TFLite (tensorflow-cpu + ai-edge-litert, about 1.5 GB) is not in any extra.
        "export": [
            "onnx>=1.20.1",
            "onnx-ir>=0.2.1",
            "onnxruntime>=1.24.1",
            "sympy>=1.13",
        ],
    },
)

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("keras_gen/version.py").read_text(), version)

setup(
    name="keras-gen",
    version=version["__version__"],
    description="Generative image models (GAN, VAE, PixelCNN) for Keras 3 with TFLite export",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_gen", "keras_gen.*", "export", "export.*"]),
    package_data={"keras_gen": ["datasets/*.gz", "datasets/*.txt", "weights/*", "presets/*/*"]},
    install_requires=[
        "tensorflow>=2.16",  # tested with 2.21
        "keras>=3.13",
        "tensorflow-datasets",
        "tensorboard",
        "numpy",
        "pillow",
        # Imported at run time by what a plain install promises: `keras-gen export` validates
        # every .tflite with the LiteRT interpreter, and the bundled 'digits' data set (listed by
        # `keras-gen info`, usable by train/evaluate) is scikit-learn's. Both are plain wheels and
        # small next to TensorFlow, so they are requirements rather than an extra to forget.
        "ai-edge-litert",
        "scikit-learn",
    ],
    extras_require={
        "dev": [
            "pytest",
            "pytest-xdist",  # two test processes on CI's two cores (pytest.ini)
            "scipy",  # independent reference computations in tests
            "nbclient",
            "nbformat",
            "ipykernel",
        ],
    },
    entry_points={
        "console_scripts": ["keras-gen = keras_gen.cli:main"],
        # Sub-commands from packages the library must not import (export/ imports the library).
        "keras_gen.cli": ["export = export.cli:add_parser"],
    },
)

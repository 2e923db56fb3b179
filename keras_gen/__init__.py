"""keras-gen: generative image models (GAN, VAE, PixelCNN) for Keras 3, trained with `fit`.

    import keras_gen as kg
    gan = kg.models.DCGAN((28, 28, 1), seed=0)
    gan.compile()
    gan.fit(kg.data.load("fashion_mnist_10k", model=gan), epochs=5)  # in the model's range
    images = gan.generate(16, seed=0)   # float32 (16, 28, 28, 1) in [0, 1]
    kg.utils.show(images)               # a grid, in a notebook
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_gen import (  # noqa: E402
    callbacks, checks, data, distribute, layers, losses, metrics, models, networks, text, training,
    utils,
)
from keras_gen.version import __version__  # noqa: E402

__all__ = [
    "callbacks", "checks", "data", "distribute", "layers", "losses", "metrics", "models", "networks",
    "text", "training", "utils", "__version__",
]

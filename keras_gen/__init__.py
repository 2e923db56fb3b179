"""keras-gen: generative image models (GAN, VAE, PixelCNN) for Keras 3, trained with `fit`.

    import keras_gen as kg
    data = kg.data.load("fashion_mnist_10k", image_range="tanh")
    gan = kg.models.DCGAN((28, 28, 1), seed=0)
    gan.compile()
    gan.fit(data, epochs=5)
    images = gan.generate(16, seed=0)   # float32 (16, 28, 28, 1) in [0, 1]
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_gen import (  # noqa: E402
    callbacks, checks, data, distribute, layers, losses, metrics, models, networks, text, training,
)
from keras_gen.version import __version__  # noqa: E402

__all__ = [
    "callbacks", "checks", "data", "distribute", "layers", "losses", "metrics", "models", "networks",
    "text", "training", "__version__",
]

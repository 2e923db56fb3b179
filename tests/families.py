"""Tiny models of every family, and matching data, for the cross-family tests (distribution,
mixed precision)."""

from keras_gen import data

FAMILIES = ["dcgan", "vae", "pixelcnn", "vqvae"]


def build(family, **kwargs):
    from keras_gen import models

    if family == "dcgan":
        # dropout=0: Keras' Dropout draws its mask per replica, so it alone would make 1 and
        # 2 replicas differ.
        return models.DCGAN((8, 8, 1), latent_dim=8, filters=4, num_classes=10, dropout=0.0, seed=0, **kwargs)
    if family == "pixelcnn":
        return models.PixelCNN((8, 8, 1), levels=256, filters=8, num_layers=2, num_classes=10, seed=0, **kwargs)
    if family == "vae":
        return models.ConvVAE((8, 8, 1), latent_dim=4, num_classes=10, seed=0, **kwargs)
    if family == "vqvae":
        # A prior for the generate contract, frozen (the PixelCNN row covers its training), and
        # dead_code_steps=2 restarts codes within the tests' four steps.
        vq = models.VQVAE((8, 8, 1), num_embeddings=16, embedding_dim=4, filters=8, residual_blocks=1,
                          downsamplings=1, num_classes=10, dead_code_steps=2, seed=0, **kwargs)
        prior = models.PixelCNN(vq.code_shape + (1,), levels=16, filters=4, num_layers=1,
                                first_kernel_size=3, num_classes=10, seed=0)
        prior.trainable = False
        vq.set_prior(prior)
        return vq
    raise ValueError(family)


def image_range(family):
    return {"dcgan": "tanh", "pixelcnn": "levels", "vae": "unit", "vqvae": "unit"}[family]


def dataset(family, batch_size=16, n=64):
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range(family),
                     with_labels=True, shuffle=False, seed=0)

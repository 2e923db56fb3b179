"""Tiny models of every family, and matching data, for the cross-family tests (distribution,
mixed precision)."""

from keras_gen import data

FAMILIES = ["dcgan", "vae", "pixelcnn"]
# Translators train on (input, target) pairs and have no `generate`; tests/test_pix2pix.py runs
# the cross-family training checks (1 vs 2 replicas, mixed precision, XLA) on them.
TRANSLATORS = ["pix2pix"]


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
    if family == "pix2pix":
        return models.Pix2Pix((8, 8, 1), filters=4, seed=0, **kwargs)
    raise ValueError(family)


def image_range(family):
    return {"dcgan": "tanh", "pixelcnn": "levels", "vae": "unit", "pix2pix": "tanh"}[family]


def dataset(family, batch_size=16, n=64):
    if family in TRANSLATORS:
        return data.load_pairs("digits", task="superres", scale=2, split=f"train[:{n}]",
                               batch_size=batch_size, shuffle=False, seed=0)
    return data.load("digits", split=f"train[:{n}]", batch_size=batch_size, image_range=image_range(family),
                     with_labels=True, shuffle=False, seed=0)

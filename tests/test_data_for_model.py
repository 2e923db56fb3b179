"""`kg.data.load(source, model=model)`: the model's range, labels and batch size, so nothing is
chosen by hand; what is given as well must agree with the model."""

import numpy as np
import pytest

from keras_gen import data
from keras_gen.models import DCGAN, ConvVAE, PixelCNN, Pix2Pix


def first(ds):
    return [np.asarray(t) for t in next(iter(ds))] if isinstance(ds.element_spec, tuple) else np.asarray(next(iter(ds)))


def test_a_conditional_gan_gets_tanh_images_labels_and_its_batch():
    gan = DCGAN((8, 8, 1), latent_dim=4, filters=4, num_classes=10, discriminator_steps=2, seed=0)
    assert gan.batches_per_step == 2 and gan.default_batch_size == 32
    images, labels = first(data.load("digits", model=gan, shuffle=False))
    explicit = first(data.load("digits", batch_size=64, image_range="tanh", with_labels=True, shuffle=False))
    np.testing.assert_array_equal(images, explicit[0])
    np.testing.assert_array_equal(labels, explicit[1])
    assert images.shape[0] == 64 and images.min() < 0  # 32 per discriminator step, in [-1, 1]
    assert first(data.load("digits", model=gan, batch_size=8, shuffle=False))[0].shape[0] == 8


@pytest.mark.parametrize("model, image_range", [
    (lambda: ConvVAE((8, 8, 1), latent_dim=2, filters=4, seed=0), "unit"),
    (lambda: PixelCNN((8, 8, 1), levels=2, filters=4, num_layers=1, seed=0), "binary"),
    (lambda: PixelCNN((8, 8, 1), filters=4, num_layers=1, seed=0), "levels"),
])
def test_each_family_gets_its_own_range(model, image_range):
    model = model()
    assert model.data_range == image_range
    got = first(data.load("digits", model=model, shuffle=False, seed=3))
    want = first(data.load("digits", image_range=image_range, batch_size=model.default_batch_size,
                           shuffle=False, seed=3))
    np.testing.assert_array_equal(got, want)


def test_without_a_model_the_defaults_are_unchanged():
    images = first(data.load("digits", shuffle=False))
    assert images.shape[0] == 64 and images.min() >= 0 and images.max() <= 1 and images.max() > 0.5


def test_what_disagrees_with_the_model_is_an_error():
    gan = DCGAN((8, 8, 1), latent_dim=4, filters=4, seed=0)
    with pytest.raises(ValueError, match="image_range='unit'.*trains on image_range='tanh'"):
        data.load("digits", model=gan, image_range="unit")
    with pytest.raises(ValueError, match="with_labels=True.*with_labels=False"):
        data.load("digits", model=gan, with_labels=True)
    with pytest.raises(ValueError, match="load_pairs"):
        data.load("digits", model=Pix2Pix((8, 8, 1), filters=4, seed=0))

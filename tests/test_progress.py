"""Progress bars on long work outside fit (`verbose` as in Keras' predict): shown for several
batches under "auto", never for one, never with verbose=0; the results do not depend on them."""

import keras
import numpy as np
import pytest

from keras_gen import metrics, progress
from keras_gen.models import DCGAN, ConvVAE, PixelCNN


def test_tracked_shows_a_bar_only_for_several_steps(capsys):
    assert list(progress.tracked(range(3), 3)) == [0, 1, 2]
    assert "3/3" in capsys.readouterr().out
    assert list(progress.tracked(range(1), 1)) == [0]
    assert list(progress.tracked(range(3), 3, verbose=0)) == [0, 1, 2]
    assert capsys.readouterr().out == ""
    list(progress.tracked(range(1), 1, verbose=1))
    assert "1/1" in capsys.readouterr().out
    with pytest.raises(ValueError, match="verbose must be one of"):
        list(progress.tracked(range(1), 1, verbose=True))


def test_generate_shows_batches_and_gives_the_same_images(capsys):
    gan = DCGAN((8, 8, 1), latent_dim=4, filters=4, seed=0)
    quiet = gan.generate(5, seed=1, batch_size=2, verbose=0)
    assert capsys.readouterr().out == ""
    shown = gan.generate(5, seed=1, batch_size=2)
    assert "3/3" in capsys.readouterr().out
    np.testing.assert_array_equal(quiet, shown)
    gan.generate(5, seed=1)  # one batch: quiet under "auto"
    assert capsys.readouterr().out == ""


def test_pixelcnn_sampling_and_likelihoods_show_their_batches(capsys):
    pixelcnn = PixelCNN((4, 4, 1), levels=2, filters=4, num_layers=1, seed=0)
    levels = pixelcnn.sample(3, seed=0, batch_size=1)
    assert "3/3" in capsys.readouterr().out
    np.testing.assert_array_equal(pixelcnn.sample(3, seed=0, batch_size=3), levels)
    assert capsys.readouterr().out == ""
    vae = ConvVAE((8, 8, 1), latent_dim=2, filters=4, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 1)).astype(np.float32) / 255.0
    iwae = vae.log_likelihood(x, num_samples=4, batch_size=2)
    assert "3/3" in capsys.readouterr().out
    assert vae.log_likelihood(x, num_samples=4, batch_size=2, verbose=0) == iwae
    assert capsys.readouterr().out == ""
    vae.evaluate_elbo(x, batch_size=3)
    assert "2/2" in capsys.readouterr().out


def test_feature_statistics_show_one_bar_over_generated_batches(capsys):
    extractor = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    gan = DCGAN((8, 8, 1), latent_dim=4, filters=4, seed=0)
    stats = metrics.feature_statistics(gan, extractor, num_samples=12, batch_size=4)
    out = capsys.readouterr().out
    assert "3/3" in out and "1/1" not in out  # the model's own generate calls stay quiet
    again = metrics.feature_statistics(gan, extractor, num_samples=12, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""
    np.testing.assert_allclose(again.mean, stats.mean)

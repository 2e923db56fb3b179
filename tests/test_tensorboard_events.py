"""A short fit with Keras's TensorBoard, SampleGrid and Evaluate writes event files whose scalar
and image tags TensorBoard's own event reader reads back, with the values `fit` reported."""

import os

import numpy as np
import pytest

import keras
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

import keras_gen as kg
from keras_gen.callbacks import Evaluate, SampleGrid


def _read(run_dir):
    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


def test_fit_writes_scalar_and_image_tags(tmp_path):
    keras.utils.set_random_seed(0)
    log_dir = str(tmp_path / "logs")
    data = kg.data.load("digits", split="train[:128]", image_range="tanh", batch_size=64,
                        shuffle=False)
    gan = kg.models.DCGAN((8, 8, 1), latent_dim=4, filters=4, seed=0)
    gan.compile()
    inputs = keras.Input((8, 8, 1))
    extractor = keras.Model(inputs, keras.layers.Dense(
        4, kernel_initializer=keras.initializers.RandomNormal(0, 0.5, seed=1))(
        keras.layers.Flatten()(inputs)))
    callbacks = [
        Evaluate(data, num_samples=64, extractor=extractor, log_dir=log_dir),  # before TensorBoard
        keras.callbacks.TensorBoard(log_dir),
        SampleGrid(log_dir, n=4, seed=0),
    ]
    history = gan.fit(data, epochs=2, callbacks=callbacks, verbose=0).history

    train = _read(os.path.join(log_dir, "train"))
    for name in ("d_loss", "g_loss"):
        steps, values = zip(*_scalars(train, f"epoch_{name}"))
        assert steps == (0, 1)
        np.testing.assert_allclose(values, history[name], rtol=1e-6)

    # Keras's TensorBoard files the "val_" keys under validation/, without the prefix.
    validation = _read(os.path.join(log_dir, "validation"))
    assert [v for _, v in _scalars(validation, "epoch_fid")] == pytest.approx(history["val_fid"])
    evaluation = _read(os.path.join(log_dir, "evaluation"))
    assert [v for _, v in _scalars(evaluation, "val_fid")] == pytest.approx(history["val_fid"])

    images = _read(os.path.join(log_dir, "images"))
    assert "samples" in images.Tags()["tensors"]
    events = images.Tensors("samples")
    assert [e.step for e in events] == [1, 2]
    # An image summary holds [width, height, png...]: a 2x2 grid of 8x8 cells, 1 px padding.
    width, height, png = tf.make_ndarray(events[-1].tensor_proto)
    assert (int(width), int(height)) == (19, 19)
    grid = tf.io.decode_png(png).numpy()
    expected = kg.callbacks.make_grid(gan.generate(4, seed=0))
    np.testing.assert_array_equal(grid, expected)

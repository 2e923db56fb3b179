"""Training throughput of PixelCNN (imported by benchmarks/train_throughput.py).

"ours": `PixelCNN(variant="original")`'s compiled train function (masks multiplied in `call`).
"reference": the same network written the way the keras-io PixelCNN example writes it: a
`PixelConvLayer` that does `self.conv.kernel.assign(self.conv.kernel * self.mask)` in `call`,
a functional model, `compile(loss=SparseCategoricalCrossentropy(from_logits=True))` and Keras's
own train function. Same layers, widths, data shape and batch.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf

from keras_gen.models.pixelcnn import PixelCNN
from keras_gen.networks import policy_scope
from throughput_common import policy_lever, train_call

SHAPE = (28, 28, 1)
FILTERS = 64
NUM_LAYERS = 5


class PixelConvLayer(keras.layers.Layer):
    """keras-io's masked convolution: writes the mask into the kernel on every call."""

    def __init__(self, mask_type, **kwargs):
        super().__init__()
        self.mask_type = mask_type
        self.conv = keras.layers.Conv2D(padding="same", **kwargs)

    def build(self, input_shape):
        self.conv.build(input_shape)
        kh, kw = self.conv.kernel.shape[:2]
        self.mask = np.zeros(self.conv.kernel.shape, np.float32)
        self.mask[: kh // 2, ...] = 1.0
        self.mask[kh // 2, : kw // 2, ...] = 1.0
        if self.mask_type == "B":
            self.mask[kh // 2, kw // 2, ...] = 1.0

    def call(self, inputs):
        self.conv.kernel.assign(self.conv.kernel * self.mask)
        return self.conv(inputs)


def reference_model(levels):
    h, w, c = SHAPE
    images = keras.Input(SHAPE)
    x = PixelConvLayer("A", filters=FILTERS, kernel_size=7)(images)
    for _ in range(NUM_LAYERS):
        t = PixelConvLayer("B", filters=FILTERS, kernel_size=1)(keras.layers.ReLU()(x))
        t = keras.layers.ReLU()(t)
        t = PixelConvLayer("B", filters=FILTERS, kernel_size=3, activation="relu")(t)
        t = PixelConvLayer("B", filters=FILTERS, kernel_size=1)(t)
        x = keras.layers.Add()([x, t])
    x = PixelConvLayer("B", filters=FILTERS, kernel_size=1)(keras.layers.ELU()(x))
    x = PixelConvLayer("B", filters=levels * c, kernel_size=1)(keras.layers.ELU()(x))
    logits = keras.layers.Reshape((h, w, c, levels))(x)
    model = keras.Model(images, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(batch_size, levels):
    rng = np.random.default_rng(0)
    return rng.integers(0, levels, (batch_size,) + SHAPE).astype(np.int32)


def _build(levels, policy=None, **compile_kwargs):
    """The model, compiled; under `policy` if given, else under the global policy (so that
    `policy_lever` can set it)."""
    with policy_scope(policy):
        model = PixelCNN(SHAPE, levels=levels, filters=FILTERS, num_layers=NUM_LAYERS,
                         variant="original", seed=0)
        model.compile(**compile_kwargs)
    return model


def _ours(batch_size, levels, **kwargs):
    return train_call(_build(levels, **kwargs), _data(batch_size, levels))


def _reference(batch_size, levels):
    model = reference_model(levels)
    x = _data(batch_size, levels)
    scaled = x.astype(np.float32) * (2.0 / (levels - 1)) - 1.0
    iterator = iter(tf.data.Dataset.from_tensors((scaled, x)).repeat())
    model.make_train_function()
    return lambda: model.train_function(iterator)


def cases(batch_size=64):
    """The library's defaults (`compile()`), and XLA forced on, against the keras-io network."""
    out = []
    for levels, label, compile_kwargs in (
        (256, "defaults: compile()", {}),
        (256, "defaults, 4 steps/exec", {"steps_per_execution": 4}),
        (256, "defaults, mixed_bfloat16", {"policy": "mixed_bfloat16"}),
        (256, "XLA on", {"jit_compile": True}),
        (2, "defaults: compile()", {}),
        (2, "defaults, 4 steps/exec", {"steps_per_execution": 4}),
    ):
        spe = compile_kwargs.get("steps_per_execution", 1)
        out.append(
            dict(
                name=f"pixelcnn original {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} levels={levels} "
                f"filters={FILTERS} blocks={NUM_LAYERS}, {label}",
                images_per_call=batch_size * spe,
                reference_images_per_call=batch_size,
                ours=_ours(batch_size, levels, **compile_kwargs),
                reference=_reference(batch_size, levels),
            )
        )
    return out + [policy_lever(f"pixelcnn original levels=256 filters={FILTERS} blocks={NUM_LAYERS}",
                               lambda: _build(256), batch_size, _data(batch_size, 256))]


if __name__ == "__main__":  # a quick stand-alone run; the runner is benchmarks/train_throughput.py
    import statistics
    import time

    for case in cases(32):
        for fn in (case["ours"], case["reference"]):
            fn()
        res = {}
        for key in ("ours", "reference"):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                case[key]()
                times.append(time.perf_counter() - start)
            res[key] = statistics.median(times)
        print(f"{case['name']}: ours {res['ours']:.3f}s reference {res['reference']:.3f}s "
              f"ratio {res['reference'] / res['ours']:.2f}x")

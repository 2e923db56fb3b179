"""Writes the notebooks in notebooks/ from the cell sources below (outputs stripped).

Keeping the sources here makes notebook diffs readable; run `python scripts/make_notebooks.py`
after editing, and commit both.
"""

from pathlib import Path

import nbformat

NOTEBOOKS = {}

NOTEBOOKS["01_dcgan.ipynb"] = [
    ("md", """# DCGAN on Fashion-MNIST with `model.fit`

Load data, build a DCGAN, `compile`, `fit` with TensorBoard and a sample grid, generate, and
generate by class with a conditional DCGAN. `QUICK = True` runs in a minute or two on a CPU;
`QUICK = False` trains long enough to draw recognisable garments."""),
    ("code", """QUICK = True  # False: a real run (20 epochs on the bundled 10k images)"""),
    ("code", """import keras
import numpy as np

import keras_gen as kg

EPOCHS = 1 if QUICK else 20
SPLIT = "train[:512]" if QUICK else "train"
FILTERS = 16 if QUICK else 32  # 32: DCGAN's default
print(kg.data.info("fashion_mnist_10k"))"""),
    ("code", """data = kg.data.load("fashion_mnist_10k", split=SPLIT, batch_size=32, image_range="tanh", seed=0)
gan = kg.models.DCGAN((28, 28, 1), latent_dim=100, filters=FILTERS, seed=0)
gan.compile()  # Adam(5e-4, beta_1=0.5) for both networks; generate() uses the EMA generator
history = gan.fit(
    data,
    epochs=EPOCHS,
    callbacks=[
        keras.callbacks.TensorBoard("runs/nb_dcgan/logs"),
        kg.callbacks.SampleGrid(log_dir="runs/nb_dcgan/logs", png_dir="runs/nb_dcgan/samples", n=64, seed=0),
    ],
)
print({k: round(v[-1], 4) for k, v in history.history.items()})"""),
    ("code", """images = gan.generate(16, seed=0)  # float32 (16, 28, 28, 1) in [0, 1]
assert images.shape == (16, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
kg.callbacks.save_grid("runs/nb_dcgan/grid.png", images)
from IPython.display import Image
Image("runs/nb_dcgan/grid.png", width=240)"""),
    ("md", """## Conditional generation

With `num_classes`, both networks take the label; load the data `with_labels=True` and pass
`labels=` to `generate`."""),
    ("code", """labelled = kg.data.load("fashion_mnist_10k", split=SPLIT, batch_size=64, image_range="tanh",
                        with_labels=True, seed=0)
cgan = kg.models.DCGAN((28, 28, 1), num_classes=10, filters=FILTERS, seed=0)
cgan.compile()
cgan.fit(labelled, epochs=EPOCHS, verbose=0)
by_class = cgan.generate(20, seed=1, labels=np.arange(20) % 10)  # two of each class
print([kg.data.FASHION_MNIST_CLASSES[i] for i in range(10)])
kg.callbacks.save_grid("runs/nb_dcgan/by_class.png", by_class, columns=10)
Image("runs/nb_dcgan/by_class.png", width=400)"""),
    ("code", """cgan.save("runs/nb_dcgan/cgan.keras")
restored = keras.models.load_model("runs/nb_dcgan/cgan.keras")
np.testing.assert_array_equal(restored.generate(4, seed=2, labels=[0, 1, 2, 3]), cgan.generate(4, seed=2, labels=[0, 1, 2, 3]))
print("save/load: same images for the same seed")"""),
]


NOTEBOOKS["02_vae.ipynb"] = [
    ("md", """# Variational autoencoders: reconstructions, latent interpolation, the likelihood bound

A `ConvVAE` is trained with `model.fit` by maximising the evidence lower bound (ELBO). It
reconstructs images through a low-dimensional latent code, decodes walks through that code, and
bounds the data's log-likelihood from below: `evaluate_elbo` (one posterior sample) and
`log_likelihood` (the tighter importance-weighted IWAE bound). A conditional VAE then draws
images of a chosen class. `QUICK = True` uses the 8x8 digits and runs in a minute or two on a
CPU; `QUICK = False` trains on the bundled 28x28 Fashion-MNIST 10k."""),
    ("code", """QUICK = True  # False: the real run (28x28 Fashion-MNIST, latent 32, 30 epochs)"""),
    ("code", """import os

import keras
import numpy as np
from IPython.display import Image

import keras_gen as kg

if QUICK:
    DATASET, TRAIN, HELD_OUT = "digits", "train[:1500]", "train[1500:]"
    LATENT, FILTERS, EPOCHS, IWAE_SAMPLES = 8, 16, 8, 16
else:
    DATASET, TRAIN, HELD_OUT = "fashion_mnist_10k", "train[:9000]", "train[9000:]"
    LATENT, FILTERS, EPOCHS, IWAE_SAMPLES = 32, 32, 30, 1000
OUT = "runs/nb_vae"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET)
print(info)"""),
    ("md", """## Train a ConvVAE with `model.fit`

Images in [0, 1] (`image_range="unit"`); the pixels are 8-bit levels k / 255, which the
`"discretized_logistic"` likelihood models exactly, so its bound is in the same units as a
PixelCNN's bits/dim. The loss is the negative ELBO in nats per image (reconstruction + KL).
The `Reconstructions` callback writes held-out images beside their reconstructions every epoch."""),
    ("code", """train = kg.data.load(DATASET, split=TRAIN, batch_size=64, image_range="unit", seed=0)
held_out = kg.data.load(DATASET, split=HELD_OUT, batch_size=256, image_range="unit", shuffle=False)
vae = kg.models.ConvVAE(info.image_shape, latent_dim=LATENT, filters=FILTERS,
                        likelihood="discretized_logistic", seed=0)
vae.compile()  # Adam(1e-3)
history = vae.fit(
    train,
    epochs=EPOCHS,
    validation_data=held_out,
    callbacks=[kg.callbacks.Reconstructions(held_out, png_dir=f"{OUT}/reconstructions", n=16)],
    verbose=2,
)
print({k: round(v[-1], 2) for k, v in history.history.items()})"""),
    ("md", """## Reconstructions

Top row: held-out images; bottom row: decoded from their posterior means (`reconstruct`)."""),
    ("code", """images = np.concatenate([b.numpy() for b in held_out])
originals = images[:10]
reconstructed = vae.reconstruct(originals)  # float32 (10, H, W, C) in [0, 1]
print("mean absolute pixel error:", float(np.abs(reconstructed - originals).mean()))
kg.callbacks.save_grid(f"{OUT}/reconstructions.png", np.concatenate([originals, reconstructed]), columns=10)
Image(f"{OUT}/reconstructions.png", width=400)"""),
    ("code", """samples = vae.generate(20, seed=0)  # decoded from z ~ N(0, I)
assert samples.shape == (20,) + info.image_shape and samples.min() >= 0 and samples.max() <= 1
kg.callbacks.save_grid(f"{OUT}/samples.png", samples, columns=10)
Image(f"{OUT}/samples.png", width=400)"""),
    ("md", """## Latent interpolation

`interpolate(x_a, x_b, steps)` decodes evenly spaced points on the line between the posterior
means of two images: each row goes from one held-out image to another."""),
    ("code", """walks = vae.interpolate(images[0:4], images[4:8], steps=8)  # (4, 8, H, W, C)
print(walks.shape)
kg.callbacks.save_grid(f"{OUT}/interpolation.png", walks.reshape((-1,) + info.image_shape), columns=8)
Image(f"{OUT}/interpolation.png", width=320)"""),
    ("md", """## The likelihood bound

`evaluate_elbo` gives -ELBO, an upper bound on the negative log-likelihood, split into
reconstruction and KL; `log_likelihood` averages `num_samples` importance weights per image
(IWAE), a tighter bound that approaches -log p(x) as the number of samples grows. Both are in
nats per image and bits per dimension."""),
    ("code", """elbo = vae.evaluate_elbo(held_out)
print(f"-ELBO: {elbo['nats_per_image']:.2f} nats/image = {elbo['reconstruction']:.2f} reconstruction + "
      f"{elbo['kl']:.2f} KL; {elbo['bits_per_dim']:.3f} bits/dim on {elbo['num_examples']} held-out images")
bounds = {k: vae.log_likelihood(held_out, num_samples=k) for k in (1, IWAE_SAMPLES)}
for k, b in bounds.items():
    print(f"IWAE, {k:4d} samples: {b['nats_per_image']:.2f} nats/image, {b['bits_per_dim']:.3f} bits/dim")
# More importance samples give a tighter (lower) bound on -log p(x).
assert bounds[IWAE_SAMPLES]["nats_per_image"] <= bounds[1]["nats_per_image"]
assert bounds[IWAE_SAMPLES]["nats_per_image"] <= elbo["nats_per_image"] + 0.5"""),
    ("md", """## Conditional VAE

With `num_classes`, the encoder and the decoder both take the label: load the data
`with_labels=True`, and pass `labels=` to `generate`, `reconstruct` and the bounds. Same latent
vector, different labels: the class changes, the style stays."""),
    ("code", """labelled = kg.data.load(DATASET, split=TRAIN, batch_size=64, image_range="unit", with_labels=True, seed=0)
labelled_held_out = kg.data.load(DATASET, split=HELD_OUT, batch_size=256, image_range="unit",
                                 with_labels=True, shuffle=False)
cvae = kg.models.ConvVAE(info.image_shape, latent_dim=LATENT, filters=FILTERS, num_classes=10,
                         likelihood="discretized_logistic", seed=0)
cvae.compile()
cvae.fit(labelled, epochs=EPOCHS, verbose=0)
z = np.repeat(cvae.latent_vectors(2, seed=1), 10, axis=0)  # two styles, each with every class
by_class = cvae.generate(20, labels=np.tile(np.arange(10), 2), z=z)
kg.callbacks.save_grid(f"{OUT}/by_class.png", by_class, columns=10)
print("conditional -ELBO:", round(cvae.evaluate_elbo(labelled_held_out)["bits_per_dim"], 3), "bits/dim")
Image(f"{OUT}/by_class.png", width=400)"""),
    ("code", """cvae.save(f"{OUT}/cvae.keras")
restored = keras.models.load_model(f"{OUT}/cvae.keras")
np.testing.assert_array_equal(restored.generate(4, seed=2, labels=[0, 1, 2, 3]), cvae.generate(4, seed=2, labels=[0, 1, 2, 3]))
print("save/load: same images for the same seed")"""),
]


NOTEBOOKS["03_pixelcnn.ipynb"] = [
    ("md", """# Gated PixelCNN: likelihood in bits/dim, fast sampling, completing half images

A PixelCNN models p(x) exactly as a product of per-sub-pixel softmaxes over the 256 levels, so
it reports a true negative log-likelihood (bits per dimension) and samples one sub-pixel at a
time. `QUICK = True` trains a tiny model on the 8x8 digits in about a minute on a CPU;
`QUICK = False` trains a 7-layer gated PixelCNN on the bundled Fashion-MNIST 10k (hours on a
CPU, minutes on a GPU)."""),
    ("code", """QUICK = True  # False: the real run (28x28 Fashion-MNIST, 7 gated layers, 64 filters)"""),
    ("code", """import os
import time

import keras
import numpy as np
from IPython.display import Image

import keras_gen as kg

if QUICK:
    DATASET, TRAIN, HELD_OUT = "digits", "train[:1500]", "train[1500:]"
    FILTERS, LAYERS, EPOCHS = 16, 3, 3
else:
    DATASET, TRAIN, HELD_OUT = "fashion_mnist_10k", "train[:9000]", "train[9000:]"
    FILTERS, LAYERS, EPOCHS = 64, 7, 30
info = kg.data.info(DATASET)
os.makedirs("runs/nb_pixelcnn", exist_ok=True)
print(info)"""),
    ("md", """## Train with `model.fit` on integer levels

`image_range="levels"` yields int32 pixel levels 0..255; the loss is the negative
log-likelihood per image in nats and `bits_per_dim` is the same per sub-pixel in bits."""),
    ("code", """train = kg.data.load(DATASET, split=TRAIN, batch_size=64, image_range="levels", seed=0)
held_out = kg.data.load(DATASET, split=HELD_OUT, batch_size=256, image_range="levels", shuffle=False)
pixelcnn = kg.models.PixelCNN(info.image_shape, levels=256, filters=FILTERS, num_layers=LAYERS,
                              variant="gated", seed=0)
pixelcnn.compile()  # Adam; loss = NLL per image
history = pixelcnn.fit(train, epochs=EPOCHS, validation_data=held_out, verbose=2)
print({k: round(v[-1], 3) for k, v in history.history.items()})"""),
    ("code", """bpd = pixelcnn.bits_per_dim(held_out)
print(f"held-out bits/dim: {bpd:.3f}  (a uniform model over 256 levels: 8.000)")
assert bpd < 8.0, "the trained model must beat the uniform distribution"
# bits/dim is the per-image log-likelihood, rescaled: check it by hand on a few images.
images = np.concatenate([b.numpy() for b in held_out])[:16]
log_p = pixelcnn.log_prob(images)  # nats per image
print("by hand:", -log_p.mean() / (pixelcnn.num_dims * np.log(2)), " bits_per_dim:", pixelcnn.bits_per_dim(images))"""),
    ("md", """## Naive vs fast sampling

`method="naive"` runs the whole network once per sub-pixel (H x W x C passes); `method="fast"`
(the default) is the cached sampler: every layer keeps the rows above and the pixels to the
left it needs, and computes each activation once, when its pixel is drawn. It is one
XLA-compiled loop, the same algorithm the exported `.tflite` file runs on a phone
(`04_export_tflite`). Both methods draw the same images for the same seed. The first call of
each traces (and compiles) a graph, so time a second call."""),
    ("code", """N = 16
timings = {}
for method in ("naive", "fast"):
    pixelcnn.sample(N, seed=0, method=method)  # trace once
    start = time.perf_counter()
    samples = pixelcnn.sample(N, seed=0, method=method)
    timings[method] = time.perf_counter() - start
    print(f"{method:>5}: {timings[method]:.2f} s for {N} images ({N / timings[method]:.1f} images/s)")
same = np.array_equal(pixelcnn.sample(N, seed=0, method="naive"), pixelcnn.sample(N, seed=0, method="fast"))
print("same images from both methods:", same, "; speed-up:", round(timings["naive"] / timings["fast"], 1))"""),
    ("code", """kg.callbacks.save_grid("runs/nb_pixelcnn/samples.png", pixelcnn.generate(N, seed=0))
Image("runs/nb_pixelcnn/samples.png", width=240)"""),
    ("md", """## Completing half images

`complete(images, known_rows)` keeps the top rows of each image and samples the rest from
p(bottom | top). Top row of the grid: the held-out originals; the rows below: three
completions of each from different seeds."""),
    ("code", """originals = images[:8]
known = info.image_shape[0] // 2
completions = [pixelcnn.complete(originals, known_rows=known, seed=s) for s in range(3)]
for c in completions:
    np.testing.assert_array_equal(c[:, :known], originals[:, :known])  # the known half is kept
grid = np.concatenate([originals] + completions).astype(np.float32) / 255.0
kg.callbacks.save_grid("runs/nb_pixelcnn/completions.png", grid, columns=8)
Image("runs/nb_pixelcnn/completions.png", width=320)"""),
    ("code", """pixelcnn.save("runs/nb_pixelcnn/pixelcnn.keras")
restored = keras.models.load_model("runs/nb_pixelcnn/pixelcnn.keras")
np.testing.assert_array_equal(restored.sample(4, seed=3), pixelcnn.sample(4, seed=3))
print("save/load: same samples for the same seed")"""),
]


NOTEBOOKS["04_export_tflite.ipynb"] = [
    ("md", """# Export a generator to SavedModel and TFLite, validate it, run it as an app would

Train a (conditional) DCGAN briefly, export its generator with the `export` package to a
SavedModel and to TFLite in float32, float16, dynamic-range and full int8, check every file
against the Keras model, then load the `.tflite` with nothing but `ai_edge_litert` and NumPy.
`QUICK = True` uses the 8x8 digits and runs in a minute or two on a CPU."""),
    ("code", """QUICK = True  # False: 28x28 Fashion-MNIST, a full-width DCGAN trained for 20 epochs"""),
    ("code", """import json
import os
import shutil

import keras
import numpy as np
from IPython.display import Image

import export
import keras_gen as kg

if QUICK:
    DATASET, LATENT, FILTERS, EPOCHS, LR = "digits", 16, 16, 3, 2e-3
else:
    DATASET, LATENT, FILTERS, EPOCHS, LR = "fashion_mnist_10k", 100, 64, 20, 2e-4
OUT = "runs/nb_export"
shutil.rmtree(OUT, ignore_errors=True)  # export refuses to overwrite (overwrite=True would too)
os.makedirs(OUT)
info = kg.data.info(DATASET)"""),
    ("code", """data = kg.data.load(DATASET, batch_size=64, image_range="tanh", with_labels=True, seed=0)
gan = kg.models.DCGAN(info.image_shape, latent_dim=LATENT, filters=FILTERS, num_classes=10, seed=0)
gan.compile(d_optimizer=keras.optimizers.Adam(LR, beta_1=0.5), g_optimizer=keras.optimizers.Adam(LR, beta_1=0.5))
gan.fit(data, epochs=EPOCHS, verbose=2)
gan.save(f"{OUT}/gan.keras")
kg.callbacks.save_grid(f"{OUT}/keras.png", gan.generate(20, seed=0, labels=np.arange(20) % 10), columns=10)
Image(f"{OUT}/keras.png", width=400)"""),
    ("md", """## Export

`export.saved_model` writes a SavedModel whose `generate` signature maps (`z`, `label`) to
`images` in [0, 1]; `export.tflite` converts it, once per quantisation mode, to one `.tflite`
file holding every signature of the model (`separate_files=True` writes one per signature). Full int8 needs
representative inputs to calibrate its activation ranges: `export.prior_samples` draws them
from the generator's own prior. The same is one command: `python -m export --model
runs/nb_export/gan.keras --out runs/nb_export/exported`."""),
    ("code", """EXPORTED = f"{OUT}/exported"
export.saved_model(gan, f"{EXPORTED}/saved_model")
for quantize in (None, "float16", "dynamic", "int8"):  # None = float32; one model[.<mode>].tflite each
    export.tflite(f"{EXPORTED}/saved_model", EXPORTED, quantize=quantize,
                  representative_data=export.prior_samples(gan, n=256, seed=1))
for name in sorted(os.listdir(EXPORTED)):
    path = os.path.join(EXPORTED, name)
    print(f"{name:28s}", f"{os.path.getsize(path) / 1024:8.1f} KiB" if os.path.isfile(path) else "(folder)")"""),
    ("md", """## Validate

Every file runs on the same latent vectors and labels as Keras, at batch 1 and a larger batch;
the report gives the largest pixel error, PSNR, size and latency, and raises if a file is
beyond tolerance (float32 1e-4; float16 and dynamic 1e-2; int8 PSNR >= 30 dB). Dynamic-range
files quantise the weights to int8 and the activations on the fly, so a single pixel can move by
a little more than 1e-2 while the image stays above 50 dB PSNR: we allow it 5e-2 here
(`tolerances=` overrides any limit)."""),
    ("code", """report = export.validate(gan, EXPORTED, n=16, seed=0, tolerances={"dynamic": 5e-2})
print(report.table())
assert report.passed"""),
    ("md", """## Run the `.tflite` file as an app would

An app ships `model.tflite` (every signature of the model in one file; here `generate`) and its
metadata `model.json` (input names and shapes, value range, and whether each signature runs on
the mobile GPU delegate), and needs only the LiteRT interpreter and NumPy: no TensorFlow, no
keras-gen."""),
    ("code", """from ai_edge_litert.interpreter import Interpreter

meta = json.load(open(f"{EXPORTED}/model.json"))
print({k: meta[k] for k in ("model_class", "latent_dim", "image_shape", "num_classes", "value_range")})
print(meta["signatures"]["generate"]["inputs"], meta["signatures"]["generate"]["gpu_delegate"]["blocking_ops"])

interpreter = Interpreter(model_path=f"{EXPORTED}/model.tflite")
generate = interpreter.get_signature_runner("generate")
rng = np.random.default_rng(7)
app_images = []
for label in range(10):  # one image per request, as an app would ask
    z = rng.standard_normal((1, meta["latent_dim"])).astype(np.float32)
    app_images.append(generate(z=z, label=np.array([label], np.int32))["images"][0])
app_images = np.stack(app_images)
print(app_images.shape, app_images.dtype, float(app_images.min()), float(app_images.max()))"""),
    ("code", """# The same latent vectors through Keras give the same pixels (float32 file: within 1e-4).
rng = np.random.default_rng(7)
z = np.concatenate([rng.standard_normal((1, meta["latent_dim"])).astype(np.float32) for _ in range(10)])
np.testing.assert_allclose(app_images, gan.generate(10, labels=np.arange(10), z=z), atol=1e-4)

int8 = Interpreter(model_path=f"{EXPORTED}/model.int8.tflite").get_signature_runner("generate")
int8_images = np.stack([int8(z=z[i : i + 1], label=np.array([i], np.int32))["images"][0] for i in range(10)])
print("int8 vs float32 max pixel difference:", float(np.abs(int8_images - app_images).max()))
kg.callbacks.save_grid(f"{OUT}/tflite.png", np.concatenate([app_images, int8_images]), columns=10)
Image(f"{OUT}/tflite.png", width=400)  # top: float32 .tflite, bottom: int8 .tflite"""),
    ("md", """## A PixelCNN on the device: sampling and completion in one `.tflite` file

A PixelCNN's file holds three signatures: `distribution` (the per-sub-pixel distributions of
given images), `sample` and `complete`. The last two run the model's cached sampler, the whole
autoregressive loop inside the file (TFLite WHILE loops, builtin ops only): the app passes the
uniform noise (and labels, a temperature), so the same noise gives exactly the images
`pixelcnn.sample` gives."""),
    ("code", """pixel_data = kg.data.load("digits", batch_size=32, image_range="binary", with_labels=True, seed=0)
pixelcnn = kg.models.PixelCNN((8, 8, 1), levels=2, filters=16, num_layers=3, num_classes=10, seed=0)
pixelcnn.compile(optimizer=keras.optimizers.Adam(3e-3))
pixelcnn.fit(pixel_data.repeat().take(60 if QUICK else 2000), epochs=1, verbose=0)
export.tflite(pixelcnn, f"{OUT}/pixelcnn.tflite")  # one file, all three signatures
print(json.load(open(f"{OUT}/pixelcnn.json"))["signatures"]["sample"]["inputs"])

sample = Interpreter(model_path=f"{OUT}/pixelcnn.tflite").get_signature_runner("sample")
labels = np.arange(10, dtype=np.int32)
uniform = pixelcnn.uniform_noise(seed=3, start=0, stop=10).numpy()  # or any uniform noise in (0, 1)
on_device = sample(uniform=uniform, label=labels, temperature=np.float32(1.0))["images"]
np.testing.assert_array_equal(on_device, pixelcnn.sample(10, seed=3, labels=labels))
print("LiteRT sample == pixelcnn.sample, bit for bit")

complete = Interpreter(model_path=f"{OUT}/pixelcnn.tflite").get_signature_runner("complete")
halves = complete(images=on_device, start_row=np.int32(4), uniform=pixelcnn.uniform_noise(4, 0, 10).numpy(),
                  label=labels, temperature=np.float32(1.0))["images"]
np.testing.assert_array_equal(halves, pixelcnn.complete(on_device, known_rows=4, seed=4, labels=labels))
kg.callbacks.save_grid(f"{OUT}/pixelcnn.png", np.concatenate([on_device, halves]).astype(np.float32), columns=10)
Image(f"{OUT}/pixelcnn.png", width=400)  # top: samples; bottom: their top halves completed"""),
    ("code", """# The validation table: every signature against Keras, and whether it suits the GPU delegate
# (the sampler's WHILE loop and ARG_MAX stay on the CPU).
print(export.validate(pixelcnn, f"{OUT}/pixelcnn.tflite", n=4, repeats=2).table())"""),
]


NOTEBOOKS["05_distributed.ipynb"] = [
    ("md", """# The same training under `tf.distribute`

`MirroredStrategy` keeps a copy of the model on each device and splits every global batch
between them; on a real box the devices are GPUs. Here the CPU is split into two logical
devices so the notebook runs anywhere. keras-gen's train steps are replica-exact: the same
global batch and seed give the same update on 1 or 2 replicas, which this notebook checks.
The last section shows the multi-worker (several machines) setup with `TF_CONFIG`."""),
    ("code", """QUICK = True  # False: 28x28 Fashion-MNIST, full-width DCGAN, 20 epochs"""),
    ("md", """Split the CPU into two logical devices. This must run before anything initialises
TensorFlow's devices (creating a tensor, a model or a strategy), so it comes first in a fresh
kernel. On a machine with several GPUs, skip this cell: the strategy uses every GPU."""),
    ("code", """import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
tf.get_logger().setLevel("WARNING")  # quiet the per-step all-reduce INFO lines
print(tf.config.list_logical_devices("CPU"))"""),
    ("code", """import json
import os

import keras
import numpy as np
from IPython.display import Image

import keras_gen as kg

if QUICK:
    DATASET, SPLIT, LATENT, FILTERS, EPOCHS = "digits", "train[:512]", 16, 8, 2
else:
    DATASET, SPLIT, LATENT, FILTERS, EPOCHS = "fashion_mnist_10k", "train", 100, 64, 20
GLOBAL_BATCH = 64  # split across the replicas: 32 images per device here
OUT = "runs/nb_distributed"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET)"""),
    ("code", """strategy = kg.distribute.get_strategy("mirrored")  # all GPUs, else all logical CPUs
print(type(strategy).__name__, "replicas:", strategy.num_replicas_in_sync, strategy.extended.worker_devices)"""),
    ("md", """## Build and compile under `strategy.scope()`, then `fit` as usual

Variables created inside the scope are mirrored on every device; `fit` distributes the
dataset's global batches. `dropout=0.0`: Keras' `Dropout` draws its mask per replica, the one
thing that would make the two runs below differ (keras-gen's own noise, the latent vectors,
is drawn for the global batch and split, see `GenerativeModel.step_noise`)."""),
    ("code", """def build():
    gan = kg.models.DCGAN(info.image_shape, latent_dim=LATENT, filters=FILTERS, num_classes=10,
                          dropout=0.0, seed=0)
    gan.compile()
    return gan


def data(split=SPLIT):
    return kg.data.load(DATASET, split=split, batch_size=GLOBAL_BATCH, image_range="tanh",
                        with_labels=True, seed=0)


with strategy.scope():
    gan = build()
history = gan.fit(data(), epochs=EPOCHS, verbose=2)
gan.save(f"{OUT}/gan.keras")
kg.callbacks.save_grid(f"{OUT}/by_class.png", gan.generate(20, seed=0, labels=np.arange(20) % 10), columns=10)
Image(f"{OUT}/by_class.png", width=400)"""),
    ("md", """## Replica-exact: two devices give the same model as one

Train the same model on the same data once more with the default (single-device) strategy
and compare every weight and the final losses."""),
    ("code", """CHECK = "train[:256]"
with strategy.scope():
    two = build()
logs_two = two.fit(data(CHECK), epochs=1, verbose=0).history
one = build()  # default strategy: one replica
logs_one = one.fit(data(CHECK), epochs=1, verbose=0).history
worst = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights()))
print(f"largest weight difference, 1 vs 2 replicas: {worst:.2e}")
print("losses (1 replica):", {k: round(v[-1], 5) for k, v in logs_one.items()})
print("losses (2 replicas):", {k: round(v[-1], 5) for k, v in logs_two.items()})
assert worst < 1e-4
for key in logs_one:
    np.testing.assert_allclose(logs_one[key][-1], logs_two[key][-1], rtol=1e-4, atol=1e-5)"""),
    ("code", """# A model trained under a strategy saves and loads like any other (no strategy needed to use it).
restored = keras.models.load_model(f"{OUT}/gan.keras")
np.testing.assert_array_equal(restored.generate(4, seed=1, labels=[0, 1, 2, 3]), gan.generate(4, seed=1, labels=[0, 1, 2, 3]))
print("reloaded outside the strategy: same images")"""),
    ("md", """## Several machines: `MultiWorkerMirroredStrategy` and `TF_CONFIG`

Every worker runs the same program with its own `TF_CONFIG`: the same `cluster` (all worker
addresses, worker 0 first) and its own `task.index`. Worker 0 is the chief: it writes the
checkpoints, logs and sample grids; the others write to temporary folders.

```python
import keras_gen as kg

strategy = kg.distribute.get_strategy("multi_worker")   # reads TF_CONFIG; "auto" does too
with strategy.scope():
    gan = kg.models.DCGAN((28, 28, 1), num_classes=10, seed=0)
    gan.compile()
gan.fit(kg.data.load("fashion_mnist_10k", batch_size=64, image_range="tanh", with_labels=True, seed=0),
        epochs=20)
if kg.distribute.is_chief():
    gan.save("runs/mw/gan.keras")
```

or, with the command line, `keras-gen train --strategy multi_worker ...` on every worker. The
cell below writes one launch script per worker; `tests/test_distribute.py` runs two such
workers on one machine and checks that they train the same weights as a single process."""),
    ("code", """WORKERS = ["host1:12345", "host2:12345"]  # on one machine: ["localhost:12345", "localhost:12346"]
command = (f"keras-gen train --strategy multi_worker --model dcgan --dataset {DATASET} --conditional "
           f"--epochs {EPOCHS} --batch-size {GLOBAL_BATCH} --filters {FILTERS} --latent-dim {LATENT} --out runs/mw")
for index in range(len(WORKERS)):
    tf_config = {"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": index}}
    script = f"#!/bin/sh\\n# worker {index} of {len(WORKERS)}\\nTF_CONFIG='{json.dumps(tf_config)}' {command}\\n"
    with open(f"{OUT}/worker_{index}.sh", "w") as f:
        f.write(script)
    print(f"--- {OUT}/worker_{index}.sh\\n{script}")"""),
]




NOTEBOOKS["06_vqvae.ipynb"] = [
    ("md", """# VQ-VAE: discrete codes, a PixelCNN prior over them, and fast generation

A VQ-VAE encodes an image into a small grid of discrete codes from a learned codebook and
decodes the codes back to pixels. It is trained in two stages, each a `model.fit`: first the
autoencoder (reconstruction + commitment, the codebook as a moving average of the encoder
outputs), then a PixelCNN *prior* over the code grid. Sampling is then a short autoregression
over the codes (7x7 for 28x28 images instead of 784 pixels) and one decoder pass.
`QUICK = True` uses the 8x8 digits (4x4 codes) and runs in about a minute on a CPU;
`QUICK = False` trains on the bundled 28x28 Fashion-MNIST 10k (7x7 codes)."""),
    ("code", """QUICK = True  # False: the real run (28x28 Fashion-MNIST 10k, 256 codes, 7x7 grids)"""),
    ("code", """import os

import keras
import numpy as np
from IPython.display import Image

import keras_gen as kg

if QUICK:
    DATASET, SPLIT, TEST = "digits", "train[:1400]", "train[1400:]"
    VQ = dict(num_embeddings=32, embedding_dim=8, filters=16, residual_blocks=1, downsamplings=1)
    PRIOR = dict(filters=16, num_layers=3, first_kernel_size=3)
    VQ_EPOCHS, PRIOR_EPOCHS = 4, 4
else:
    DATASET, SPLIT, TEST = "fashion_mnist_10k", "train[:9000]", "train[9000:]"
    VQ, PRIOR = {}, {}  # the defaults: 256 codes of size 32, a 7-layer gated PixelCNN prior
    VQ_EPOCHS, PRIOR_EPOCHS = 20, 20
OUT = "runs/nb_vqvae"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET)
print(info)"""),
    ("md", """## Stage 1: the autoencoder

Images in [0, 1] (8-bit levels, for the discretised logistic likelihood). The class labels ride
along: the autoencoder ignores them, the prior will use them. Keras logs the reconstruction
term (nats per image), the commitment term and the codebook's *perplexity*, exp(entropy) of
the codes' frequencies: K if every code were used equally, 1 if one code took everything."""),
    ("code", """train = kg.data.load(DATASET, split=SPLIT, batch_size=64, image_range="unit", with_labels=True, seed=0)
test = kg.data.load(DATASET, split=TEST, batch_size=256, image_range="unit", with_labels=True, shuffle=False)
vq = kg.models.VQVAE(info.image_shape, num_classes=info.num_classes, seed=0, **VQ)
vq.compile()  # Adam(1e-3); codebook by EMA, dead codes re-seeded from the batch
history = vq.fit(train, epochs=VQ_EPOCHS, verbose=2, callbacks=[
    keras.callbacks.TensorBoard(f"{OUT}/logs"),
    kg.callbacks.Reconstructions(test, log_dir=f"{OUT}/logs", png_dir=f"{OUT}/samples", n=16),
])
print({k: round(v[-1], 2) for k, v in history.history.items()})
print("code grid:", vq.code_shape, "codebook size:", vq.num_embeddings)"""),
    ("code", """images, labels = next(iter(test))
images, labels = images.numpy()[:16], labels.numpy()[:16]
codes = vq.encode_codes(images)  # int32 (16, h, w): the whole image in h * w small integers
print(codes[0])
reconstructed = vq.decode_codes(codes)
print(f"{vq.code_shape[0] * vq.code_shape[1]} codes of {np.log2(vq.num_embeddings):.0f} bits for "
      f"{vq.num_dims} pixels of 8 bits: {vq.num_dims * 8 / (codes[0].size * np.log2(vq.num_embeddings)):.0f}x fewer bits")
pairs = np.stack([images, reconstructed], axis=1).reshape((-1,) + info.image_shape)
kg.callbacks.save_grid(f"{OUT}/reconstructions.png", pairs, columns=8)
Image(f"{OUT}/reconstructions.png", width=320)"""),
    ("md", """## Stage 2: a PixelCNN prior over the codes

`vq.code_dataset(train)` turns the image batches into code grids `(batch, h, w, 1)` (with the
labels); the prior is our `PixelCNN` with one level per code, class-conditional like the
VQ-VAE. Its loss is the negative log-likelihood of the codes; bits per code would be
log2(K) for a uniform prior."""),
    ("code", """prior = kg.models.PixelCNN(vq.code_shape + (1,), levels=vq.num_embeddings,
                           num_classes=info.num_classes, seed=0, **PRIOR)
prior.compile()
prior.fit(vq.code_dataset(train), epochs=PRIOR_EPOCHS, verbose=2)
bits = prior.log_likelihood(vq.code_dataset(test))["nats_per_image"] / (np.log(2) * np.prod(vq.code_shape))
print(f"prior: {bits:.2f} bits per code on held-out images (uniform: {np.log2(vq.num_embeddings):.2f})")
vq.set_prior(prior)"""),
    ("md", """## Generate

`generate` samples codes from the prior (the fast cached sampler) and decodes them: float32
images in [0, 1], the same images for the same seed. Here two rows per class."""),
    ("code", """samples = vq.generate(20, seed=0, labels=np.arange(20) % 10)
kg.callbacks.save_grid(f"{OUT}/samples.png", samples, columns=10)
print(samples.shape, samples.dtype, samples.min(), samples.max())
Image(f"{OUT}/samples.png", width=400)"""),
    ("md", """## The likelihood bound and the reconstruction error

The posterior is one-hot, so the negative ELBO is the reconstruction term plus the prior's
negative log-likelihood of the codes; in bits/dim it compares with the VAE and the PixelCNN."""),
    ("code", """result = vq.evaluate_elbo(test)
print({k: round(v, 3) for k, v in result.items()})"""),
    ("code", """vq.save(f"{OUT}/vqvae.keras")  # the prior is saved inside
restored = keras.models.load_model(f"{OUT}/vqvae.keras")
np.testing.assert_array_equal(restored.generate(4, seed=3, labels=[0, 1, 2, 3]),
                              vq.generate(4, seed=3, labels=[0, 1, 2, 3]))
print("save/load: same images for the same seed")"""),
    ("md", """## The same with the command

```
keras-gen train --model vqvae --dataset fashion_mnist_10k --conditional --epochs 20 --out runs/vq
keras-gen train --model vqvae-prior --vqvae runs/vq/model.keras --dataset fashion_mnist_10k \\
    --conditional --epochs 20 --out runs/vq-prior
keras-gen sample --model runs/vq-prior/model.keras -n 64 --out samples.png
python -m export --model runs/vq-prior/model.keras --out exported/
```

The second run's `model.keras` holds the VQ-VAE and its prior; its export has `decode` (codes
to images), `encode` and `generate` (uniform noise and a label in, images out: the prior's
sampler and the decoder in one graph, no random ops)."""),
]
NOTEBOOKS["07_pix2pix.ipynb"] = [
    ("md", """# Image-to-image translation with pix2pix

`Pix2Pix` turns one image into another: a U-Net generator trained with a conditional
PatchGAN discriminator plus an L1 term (Isola et al. 2017). Pairs come from
`kg.data.load_pairs`: a paired folder (`A/` and `B/`), the side-by-side layout of the public
pix2pix data sets, an `.npz` with `a` and `b`, or a task derived from any image data set in
the `tf.data` pipeline (`edges`, `inpaint`, `colorize`, `superres`). This notebook trains
edges -> Fashion-MNIST items, measures the translations, and exports the generator to an int8
TFLite file. `QUICK = True` runs in about a minute on a CPU; `QUICK = False` trains for real."""),
    ("code", """QUICK = True  # False: 9,000 training images, filters 32, 10 epochs"""),
    ("code", """import os

import keras
import numpy as np
from IPython.display import Image

import export
import keras_gen as kg

if QUICK:
    TRAIN, TEST, FILTERS, EPOCHS = "train[:512]", "train[9000:9256]", 8, 1
else:
    TRAIN, TEST, FILTERS, EPOCHS = "train[:9000]", "train[9000:]", 32, 10
OUT = "runs/nb_pix2pix"
os.makedirs(OUT, exist_ok=True)"""),
    ("md", """## Pairs from single images

Each task makes the input from the image inside the pipeline; the target is the image. Rows:
edges, inpaint (a random hole, new every epoch, repeatable with `seed`), superres (4x4 block
means), and the targets. Pairs come in [-1, 1] (`image_range="tanh"`), what `Pix2Pix` trains on."""),
    ("code", """rows = []
for task in ("edges", "inpaint", "superres"):
    inputs, targets = next(iter(kg.data.load_pairs("fashion_mnist_10k", task=task, batch_size=8,
                                                   shuffle=False, seed=0)))
    rows.append(inputs.numpy())
rows.append(targets.numpy())
kg.callbacks.save_grid(f"{OUT}/tasks.png", (np.concatenate(rows) + 1) / 2, columns=8)
print(kg.data.pair_info("fashion_mnist_10k", task="edges"))
Image(f"{OUT}/tasks.png", width=320)"""),
    ("md", """## Train edges -> image with `fit`

The logs hold the discriminator loss, the generator's total (`g_loss` = `g_adversarial` +
`l1_weight` x `l1`) and its terms. `Evaluate` adds MAE, PSNR and SSIM of the outputs on
held-out pairs each epoch (`val_mae`, ...), `Translations` writes input | output | target
triplets to TensorBoard and PNG. `upsampling="resize"` (resize + convolution) keeps the int8
model fast on CPUs (benchmarks/RESULTS.md)."""),
    ("code", """train = kg.data.load_pairs("fashion_mnist_10k", task="edges", split=TRAIN, batch_size=64, seed=0)
held = kg.data.load_pairs("fashion_mnist_10k", task="edges", split=TEST, batch_size=128, shuffle=False,
                          with_labels=True, seed=1)
model = kg.models.Pix2Pix((28, 28, 1), filters=FILTERS, upsampling="resize", task="edges", seed=0)
model.compile()  # Adam(2e-4, beta_1=0.5) for both networks, as in the paper
history = model.fit(train, epochs=EPOCHS, verbose=2, callbacks=[
    kg.callbacks.Evaluate(held, metrics=["mae", "psnr", "ssim"], num_samples=256),
    kg.callbacks.Translations(held, log_dir=f"{OUT}/logs", png_dir=f"{OUT}/translations", n=8),
    keras.callbacks.TensorBoard(f"{OUT}/logs"),
])
print({k: round(v[-1], 4) for k, v in history.history.items()})
Image(f"{OUT}/translations/translations_{EPOCHS:03d}.png", width=480)"""),
    ("md", """## Translate and measure

`translate` takes images in [0, 1] (pixels / 255, whatever range the model trains in) and
returns float32 images in [0, 1]. `kg.metrics.translation_metrics` measures any translator
(a function of [0, 1] inputs) against held-out targets, so the model and a trivial baseline
(the edge map itself) are measured the same way. `class_accuracy`
asks the shipped Fashion-MNIST classifier whether an output still shows its item."""),
    ("code", """inputs, targets, labels = next(iter(held))
unit_inputs = (inputs.numpy() + 1) / 2  # held pairs are in the model's [-1, 1]
outputs = model.translate(unit_inputs)  # float32 (128, 28, 28, 1) in [0, 1]
assert outputs.shape == (128, 28, 28, 1) and outputs.min() >= 0 and outputs.max() <= 1
names = ["mae", "psnr", "ssim", "fid", "class_accuracy"]
ours = kg.metrics.translation_metrics(model, held, names)
copied = kg.metrics.translation_metrics(lambda x: x, held, names, data_range="tanh")
for name in names:
    print(f"{name:15s} pix2pix {ours[name]:8.4f}   input copied {copied[name]:8.4f}")"""),
    ("code", """model.save(f"{OUT}/pix2pix.keras")
restored = keras.models.load_model(f"{OUT}/pix2pix.keras")
np.testing.assert_array_equal(restored.translate(unit_inputs), outputs)
print("save/load: the same translations")"""),
    ("md", """## Export to TFLite

The `translate` signature takes images in [0, 1] and returns images in [0, 1]. int8 needs
calibration inputs of the kind the model is for (edge maps, not noise): pass real ones as
`representative_data`, and validate on them too; `export.validate` checks the file against
Keras (PSNR >= 30 dB for int8). The same is one command, which reads the run's data set from
its `config.json` (or `--calibration-data DATASET`): `keras-gen export --model
runs/p/model.keras --out exported --quantize none,int8`."""),
    ("code", """from ai_edge_litert.interpreter import Interpreter

calibration_pairs = kg.data.load_pairs("fashion_mnist_10k", task="edges", split=TRAIN,
                                       batch_size=256, image_range="unit", seed=1)
real = {"translate": {"images": next(iter(calibration_pairs))[0].numpy()}}
paths = export.tflite(model, f"{OUT}/exported", quantize="int8", overwrite=True,
                      representative_data=real)
print(export.validate(model, f"{OUT}/exported", n=16, inputs=real).summary())
runner = Interpreter(model_path=str(paths["translate"])).get_signature_runner("translate")
app_out = runner(images=unit_inputs[:4])["images"]  # an app feeds pixels / 255
print("int8 on device vs Keras, mean abs difference:", float(np.abs(app_out - outputs[:4]).mean()))"""),
]

def build(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating an unchanged notebook changes nothing
        nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), out / name)
        print("wrote", out / name)

"""Writes the notebooks in notebooks/ from the cell sources below (outputs stripped).

The notebooks are a course, in file-name order: the families (01 GAN .. 06 diffusion, 06b text
to image), then evaluation (07), scaling (08) and deployment (09).

Keeping the sources here makes notebook diffs readable; run `python scripts/make_notebooks.py`
after editing, and commit both.
"""

from pathlib import Path

import nbformat

NOTEBOOKS = {}

NOTEBOOKS["01_dcgan.ipynb"] = [
    ("md", """# DCGAN on Fashion-MNIST with `model.fit`

The first notebook of the course (GAN, VAE, PixelCNN, VQ-VAE, pix2pix, diffusion; then
evaluation, scaling, deployment). Build a DCGAN, load data the way it trains
(`kg.data.load(..., model=gan)`), `compile`, `fit` with TensorBoard and a sample grid, generate,
and generate by class name with a conditional DCGAN. `QUICK = True` runs in about a minute on a
CPU with a narrow network and 512 images; `QUICK = False` (the real budget: 20 epochs of the
defaults on the bundled 10k images; 10 epochs reach `val_fid` 36.6 in 4.5 minutes of an idle
2-core CPU, and the README's conditional quick start 16.5 in 5 epochs) draws recognisable garments."""),
    ("code", """QUICK = True  # False: a real run (20 epochs on the bundled 10k images)"""),
    ("code", """import keras
import numpy as np

import keras_gen as kg

EPOCHS = 1 if QUICK else 20
SPLIT = "train[:512]" if QUICK else "train"
SIZE = dict(filters=16) if QUICK else {}  # {}: DCGAN's default width
info = kg.data.info("fashion_mnist_10k")
print(info)"""),
    ("code", """gan = kg.models.DCGAN((28, 28, 1), seed=0, **SIZE)
# model=gan: images in the generator's range ([-1, 1] for its tanh) and the family's batch size
data = kg.data.load("fashion_mnist_10k", split=SPLIT, model=gan, seed=0)
gan.compile()  # the family's optimisers and learning rates; generate() uses the EMA generator
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
kg.utils.show(images)  # a grid: a matplotlib figure, or a PIL image without matplotlib"""),
    ("md", """## Conditional generation

With `num_classes`, both networks take the label. Give the model the data's class names
(`info.class_names`; they are saved in its `.keras` file), and `generate` takes labels by name
or by index. `model=cgan` loads the labels with the images."""),
    ("code", """cgan = kg.models.DCGAN((28, 28, 1), num_classes=info.num_classes, class_names=info.class_names,
                       seed=0, **SIZE)
cgan.compile()
cgan.fit(kg.data.load("fashion_mnist_10k", split=SPLIT, model=cgan, seed=0), epochs=EPOCHS, verbose=0)
print(cgan.class_names)
names = list(cgan.class_names) * 2  # two of each class, by name
kg.utils.show(cgan.generate(20, seed=1, labels=names), cols=10, titles=names)"""),
    ("code", """cgan.save("runs/nb_dcgan/cgan.keras")
restored = keras.models.load_model("runs/nb_dcgan/cgan.keras")
shoes = ["Sneaker", "Sandal", "Ankle boot", "Sneaker"]
np.testing.assert_array_equal(restored.generate(4, seed=2, labels=shoes), cgan.generate(4, seed=2, labels=shoes))
assert restored.class_names == cgan.class_names
print("save/load: same images for the same seed, same class names")"""),
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
    ("code", """vae = kg.models.ConvVAE(info.image_shape, latent_dim=LATENT, filters=FILTERS,
                        likelihood="discretized_logistic", seed=0)
train = kg.data.load(DATASET, split=TRAIN, model=vae, seed=0)  # model=: its range, [0, 1]
held_out = kg.data.load(DATASET, split=HELD_OUT, model=vae, batch_size=256, shuffle=False)
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
kg.utils.show(np.concatenate([originals, reconstructed]), cols=10)"""),
    ("code", """samples = vae.generate(20, seed=0)  # decoded from z ~ N(0, I)
assert samples.shape == (20,) + info.image_shape and samples.min() >= 0 and samples.max() <= 1
kg.utils.show(samples, cols=10)"""),
    ("md", """## Latent interpolation

`interpolate(x_a, x_b, steps)` decodes evenly spaced points on the line between the posterior
means of two images: each row goes from one held-out image to another."""),
    ("code", """walks = vae.interpolate(images[0:4], images[4:8], steps=8)  # (4, 8, H, W, C)
print(walks.shape)
kg.utils.show(walks.reshape((-1,) + info.image_shape), cols=8)"""),
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
    ("code", """cvae = kg.models.ConvVAE(info.image_shape, latent_dim=LATENT, filters=FILTERS, num_classes=10,
                         likelihood="discretized_logistic", seed=0)
labelled = kg.data.load(DATASET, split=TRAIN, model=cvae, seed=0)  # with the labels
labelled_held_out = kg.data.load(DATASET, split=HELD_OUT, model=cvae, batch_size=256, shuffle=False)
cvae.compile()
cvae.fit(labelled, epochs=EPOCHS, verbose=0)
z = np.repeat(cvae.latent_vectors(2, seed=1), 10, axis=0)  # two styles, each with every class
by_class = cvae.generate(20, labels=np.tile(np.arange(10), 2), z=z)
print("conditional -ELBO:", round(cvae.evaluate_elbo(labelled_held_out)["bits_per_dim"], 3), "bits/dim")
kg.utils.show(by_class, cols=10)"""),
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

`kg.data.load(..., model=pixelcnn)` yields what it trains on, int32 pixel levels 0..255; the loss is the negative
log-likelihood per image in nats and `bits_per_dim` is the same per sub-pixel in bits."""),
    ("code", """pixelcnn = kg.models.PixelCNN(info.image_shape, levels=256, filters=FILTERS, num_layers=LAYERS,
                              variant="gated", seed=0)
train = kg.data.load(DATASET, split=TRAIN, model=pixelcnn, seed=0)  # model=: int32 levels
held_out = kg.data.load(DATASET, split=HELD_OUT, model=pixelcnn, batch_size=256, shuffle=False)
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
(`09_deployment`). Both methods draw the same images for the same seed. The first call of
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
    ("code", """kg.utils.show(pixelcnn.generate(N, seed=0))"""),
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
kg.utils.show(grid, cols=8)"""),
    ("code", """pixelcnn.save("runs/nb_pixelcnn/pixelcnn.keras")
restored = keras.models.load_model("runs/nb_pixelcnn/pixelcnn.keras")
np.testing.assert_array_equal(restored.sample(4, seed=3), pixelcnn.sample(4, seed=3))
print("save/load: same samples for the same seed")"""),
]


NOTEBOOKS["09_deployment.ipynb"] = [
    ("md", """# Deployment: SavedModel and TFLite files, validated, run as an app would

The last notebook of the course. Train a (conditional) DCGAN briefly, export its generator with
the `export` package to a SavedModel and to TFLite in float32, float16, dynamic-range and full
int8, check every file against the Keras model, then load the `.tflite` with nothing but
`ai_edge_litert` and NumPy; then a PixelCNN whose whole sampling loop runs in the file
(`06_diffusion` does the same for a diffusion sampler). `QUICK = True` uses the 8x8 digits and a
narrow network and runs in about a minute on a CPU; `QUICK = False` trains the default DCGAN
on 28x28 Fashion-MNIST for 20 epochs (twice the 10 that take 4.5 minutes on an idle 2-core CPU)."""),
    ("code", """QUICK = True  # False: 28x28 Fashion-MNIST, the default DCGAN trained for 20 epochs"""),
    ("code", """import json
import os
import shutil

import keras
import numpy as np

import export
import keras_gen as kg

if QUICK:
    DATASET, SIZE, EPOCHS = "digits", dict(latent_dim=16, filters=16), 3
else:
    DATASET, SIZE, EPOCHS = "fashion_mnist_10k", {}, 20  # {}: the constructor's defaults
OUT = "runs/nb_export"
shutil.rmtree(OUT, ignore_errors=True)  # export refuses to overwrite (overwrite=True would too)
os.makedirs(OUT)
info = kg.data.info(DATASET)"""),
    ("code", """gan = kg.models.DCGAN(info.image_shape, num_classes=info.num_classes, class_names=info.class_names,
                      seed=0, **SIZE)
gan.compile()  # the family's default optimisers
gan.fit(kg.data.load(DATASET, model=gan, seed=0), epochs=EPOCHS, verbose=2)
gan.save(f"{OUT}/gan.keras")
kg.utils.show(gan.generate(20, seed=0, labels=np.arange(20) % 10), cols=10)"""),
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
kg.utils.show(np.concatenate([app_images, int8_images]), cols=10)  # top: float32 .tflite, bottom: int8"""),
    ("md", """## A PixelCNN on the device: sampling and completion in one `.tflite` file

A PixelCNN's file holds three signatures: `distribution` (the per-sub-pixel distributions of
given images), `sample` and `complete`. The last two run the model's cached sampler, the whole
autoregressive loop inside the file (TFLite WHILE loops, builtin ops only): the app passes the
uniform noise (and labels, a temperature), so the same noise gives exactly the images
`pixelcnn.sample` gives."""),
    ("code", """pixelcnn = kg.models.PixelCNN((8, 8, 1), levels=2, filters=16, num_layers=3, num_classes=10, seed=0)
pixelcnn.compile()
pixel_data = kg.data.load("digits", model=pixelcnn, batch_size=32, seed=0)  # levels=2: binarised images
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
kg.utils.show(np.concatenate([on_device, halves]).astype(np.float32), cols=10)  # top: samples; bottom: top halves completed"""),
    ("code", """# The validation table: every signature against Keras, and whether it suits the GPU delegate
# (the sampler's WHILE loop and ARG_MAX stay on the CPU).
print(export.validate(pixelcnn, f"{OUT}/pixelcnn.tflite", n=4, repeats=2).table())"""),
]


NOTEBOOKS["08_scaling.ipynb"] = [
    ("md", """# Scaling: the same training under `tf.distribute`

`MirroredStrategy` keeps a copy of the model on each device and splits every global batch
between them; on a real box the devices are GPUs. Here the CPU is split into two logical
devices so the notebook runs anywhere. keras-gen's train steps are replica-exact: the same
global batch and seed give the same update on 1 or 2 replicas, which this notebook checks.
The last section shows the multi-worker (several machines) setup with `TF_CONFIG`."""),
    ("code", """QUICK = True  # False: 28x28 Fashion-MNIST, the default DCGAN, 20 epochs"""),
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

import keras_gen as kg

if QUICK:  # a narrow network on the 8x8 digits: about a minute on a 2-core CPU
    DATASET, SPLIT, SIZE, EPOCHS = "digits", "train[:512]", dict(latent_dim=16, filters=8), 2
else:  # the constructor's defaults on the 10k images: minutes on two GPUs
    DATASET, SPLIT, SIZE, EPOCHS = "fashion_mnist_10k", "train", {}, 20
GLOBAL_BATCH = 64  # split across the replicas: 32 images per device here
OUT = "runs/nb_distributed"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET)"""),
    ("code", """strategy = kg.distribute.get_strategy("mirrored")  # all GPUs, else all logical CPUs
print(type(strategy).__name__, "replicas:", strategy.num_replicas_in_sync, strategy.extended.worker_devices)"""),
    ("md", """## Build and compile under `strategy.scope()`, then `fit` as usual

Variables created inside the scope are mirrored on every device; `fit` distributes the
dataset's global batches. The model is the default DCGAN: every kind of noise in its step
(the latent vectors, dropout, DiffAugment) is drawn for the global batch and sliced per
replica (`GenerativeModel.step_noise`), so nothing needs turning off under a strategy."""),
    ("code", """def build():
    gan = kg.models.DCGAN(info.image_shape, num_classes=info.num_classes, seed=0, **SIZE)
    gan.compile()
    return gan


def data(model, split=SPLIT):  # batch_size is the global batch
    return kg.data.load(DATASET, split=split, model=model, batch_size=GLOBAL_BATCH, seed=0)


with strategy.scope():
    gan = build()
history = gan.fit(data(gan), epochs=EPOCHS, verbose=2)
gan.save(f"{OUT}/gan.keras")
kg.utils.show(gan.generate(20, seed=0, labels=np.arange(20) % 10), cols=10)"""),
    ("md", """## Replica-exact: two devices give the same model as one

Train the same model on the same data once more with the default (single-device) strategy
and compare every weight and the final losses."""),
    ("code", """CHECK = "train[:256]"
with strategy.scope():
    two = build()
logs_two = two.fit(data(two, CHECK), epochs=1, verbose=0).history
one = build()  # default strategy: one replica
logs_one = one.fit(data(one, CHECK), epochs=1, verbose=0).history
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
# model=: its range and labels; batch_size is the global batch (32 per worker on two)
gan.fit(kg.data.load("fashion_mnist_10k", model=gan, batch_size=64, seed=0), epochs=20)
if kg.distribute.is_chief():
    gan.save("runs/mw/gan.keras")
```

or, with the command line, `keras-gen train --strategy multi_worker ...` on every worker. The
cell below writes one launch script per worker; `tests/test_distribute.py` runs two such
workers on one machine and checks that they train the same weights as a single process."""),
    ("code", """WORKERS = ["host1:12345", "host2:12345"]  # on one machine: ["localhost:12345", "localhost:12346"]
flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in SIZE.items())  # none: the defaults
command = (f"keras-gen train --strategy multi_worker --model dcgan --dataset {DATASET} --conditional "
           f"--epochs {EPOCHS} --batch-size {GLOBAL_BATCH}{flags} --out runs/mw")
for index in range(len(WORKERS)):
    tf_config = {"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": index}}
    script = f"#!/bin/sh\\n# worker {index} of {len(WORKERS)}\\nTF_CONFIG='{json.dumps(tf_config)}' {command}\\n"
    with open(f"{OUT}/worker_{index}.sh", "w") as f:
        f.write(script)
    print(f"--- {OUT}/worker_{index}.sh\\n{script}")"""),
]




NOTEBOOKS["04_vqvae.ipynb"] = [
    ("md", """# VQ-VAE: discrete codes, a PixelCNN prior over them, and fast generation

A VQ-VAE encodes an image into a small grid of discrete codes from a learned codebook and
decodes the codes back to pixels. It is trained in two stages, each a `model.fit`: first the
autoencoder (reconstruction + commitment, the codebook as a moving average of the encoder
outputs), then a PixelCNN *prior* over the code grid. Sampling is then a short autoregression
over the codes (7x7 for 28x28 images instead of 784 pixels) and one decoder pass.
`QUICK = True` uses the 8x8 digits (4x4 codes) and runs in about a minute on a CPU;
`QUICK = False` trains on the bundled 28x28 Fashion-MNIST 10k (7x7 codes)."""),
    ("code", """QUICK = True  # False: the real run (28x28 Fashion-MNIST 10k, 64 codes, 7x7 grids)"""),
    ("code", """import os

import keras
import numpy as np

import keras_gen as kg

if QUICK:
    DATASET, SPLIT, TEST = "digits", "train[:1400]", "train[1400:]"
    VQ = dict(num_embeddings=32, embedding_dim=8, filters=16, residual_blocks=1, downsamplings=1)
    PRIOR = dict(filters=16, num_layers=3, first_kernel_size=3)
    VQ_EPOCHS, PRIOR_EPOCHS = 4, 4
else:
    DATASET, SPLIT, TEST = "fashion_mnist_10k", "train[:9000]", "train[9000:]"
    VQ, PRIOR = {}, {}  # the defaults: 64 codes of size 32, a 7-layer gated PixelCNN prior
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
    ("code", """vq = kg.models.VQVAE(info.image_shape, num_classes=info.num_classes, class_names=info.class_names,
                     seed=0, **VQ)
train = kg.data.load(DATASET, split=SPLIT, model=vq, seed=0)  # [0, 1], with the labels
test = kg.data.load(DATASET, split=TEST, model=vq, batch_size=256, shuffle=False)
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
kg.utils.show(pairs, cols=8)"""),
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
print(samples.shape, samples.dtype, samples.min(), samples.max())
kg.utils.show(samples, cols=10)"""),
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
NOTEBOOKS["05_pix2pix.ipynb"] = [
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


NOTEBOOKS["06_diffusion.ipynb"] = [
    ("md", """# Diffusion: train with `fit`, guide, choose the steps, run the whole sampler on the device

A `Diffusion` model learns to remove noise: each `train_step` noises a batch at a random time
and regresses the network's prediction (the denoising objective, one `model.fit` like every
family). Sampling starts from pure noise and takes a few solver steps (DPM-Solver++(2M) by
default; DDIM and the ancestral DDPM sampler too). A conditional model is trained with its
labels dropped now and then, so at sampling time *classifier-free guidance* mixes the
conditional and unconditional predictions: `guidance=0` ignores the label, 1 is the plain
conditional model, more strengthens the class. The export puts the whole sampling loop in one
`.tflite` file. `QUICK = True` trains a narrow U-Net on the 8x8 digits for a few epochs (about a
minute on a 2-core CPU; the samples are blobs); `QUICK = False` trains the default U-Net on the
bundled 28x28 Fashion-MNIST for 30 epochs (the real budget: minutes on a GPU; issue 22 sets
10 minutes on a 2-core CPU as the target, which `benchmarks/diffusion_quality.py` measures)."""),
    ("code", """QUICK = True  # False: the real run (28x28 Fashion-MNIST 10k, the default U-Net, 30 epochs)"""),
    ("code", """import os
import time

import keras
import numpy as np

import export
import keras_gen as kg

if QUICK:  # a narrow two-level U-Net; 4 sampling steps baked into the exported file
    DATASET, EPOCHS, SIZE, STEPS = "digits", 5, dict(widths=(16, 32), attention=False), 4
else:  # the constructor's defaults (U-Net widths, attention, 16 steps)
    DATASET, EPOCHS, SIZE, STEPS = "fashion_mnist_10k", 30, {}, None
OUT = "runs/nb_diffusion"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET)
print(info)"""),
    ("md", """## Train a conditional Diffusion with `fit`

`kg.data.load(..., model=model)` loads what the model trains on: images in [-1, 1] with their
labels. The logged `loss` is the denoising regression; it falls as the network learns."""),
    ("code", """extra = {} if STEPS is None else {"steps": STEPS}
model = kg.models.Diffusion(info.image_shape, num_classes=info.num_classes,
                            class_names=info.class_names, seed=0, **SIZE, **extra)
model.compile()  # the family's default optimiser
history = model.fit(kg.data.load(DATASET, model=model, seed=0), epochs=EPOCHS, verbose=2)
print("steps, sampler, guidance by default:", model.steps, model.sampler, model.guidance)
kg.utils.show(model.generate(20, seed=0, labels=np.arange(20) % 10), cols=10)"""),
    ("md", """## Guidance 0, 1, 2, 4

One row per guidance scale, the same starting noise (same `seed`) and the labels 0..9 in
every row. At 0 the label is ignored (the unconditional model); as it grows the classes get
sharper, and past a point the images saturate."""),
    ("code", """labels = np.arange(10)
GUIDANCE = (0.0, 1.0, 2.0, 4.0)
rows = [model.generate(10, seed=1, labels=labels, guidance=w) for w in GUIDANCE]
print("rows: guidance", GUIDANCE)
# guidance 0 ignores the labels: any labels give the same images
np.testing.assert_allclose(model.generate(10, seed=1, labels=labels[::-1], guidance=0.0), rows[0], atol=1e-5)
kg.utils.show(np.concatenate(rows), cols=10)"""),
    ("md", """## Steps against quality and time

Each step is one network evaluation (two, batched, with guidance). The multistep solver draws
good images at 8 to 16 steps; the rows below are 4, 8 and 16 steps from the same noise."""),
    ("code", """rows = []
for steps in (4, 8, 16):
    start = time.perf_counter()
    rows.append(model.generate(10, seed=1, labels=labels, steps=steps))
    print(f"{steps:2d} steps: {time.perf_counter() - start:.2f} s for 10 images")
kg.utils.show(np.concatenate(rows), cols=10)"""),
    ("md", """## The sampling loop in one `.tflite` file

`export.tflite(model, ...)` writes one file whose `generate` signature runs the model's whole
sampler (its `steps` steps of a deterministic solver, through the EMA network) inside the
graph, with builtin ops only: the app passes the starting noise N(0, 1), the labels and the
guidance, and gets images in [0, 1]. For the same noise the file gives Python's images."""),
    ("code", """from ai_edge_litert.interpreter import Interpreter

paths = export.tflite(model, f"{OUT}/exported", overwrite=True)
print(paths, f"{os.path.getsize(paths['generate']) / 1024:.0f} KiB")
runner = Interpreter(model_path=str(paths["generate"])).get_signature_runner("generate")
noise = np.random.default_rng(3).standard_normal((10,) + info.image_shape).astype(np.float32)
on_device = runner(noise=noise, label=labels.astype(np.int32), guidance=np.float32(2.0))["images"]
in_python = model.generate(10, labels=labels, z=noise, guidance=2.0)
print("LiteRT vs Python, largest pixel difference:", float(np.abs(on_device - in_python).max()))
np.testing.assert_allclose(on_device, in_python, atol=1e-3)
kg.utils.show(np.concatenate([on_device, in_python]), cols=10)  # top: LiteRT, bottom: Python"""),
    ("code", """model.save(f"{OUT}/diffusion.keras")
restored = keras.models.load_model(f"{OUT}/diffusion.keras")
np.testing.assert_array_equal(restored.generate(4, seed=2, labels=[0, 1, 2, 3]),
                              model.generate(4, seed=2, labels=[0, 1, 2, 3]))
print("save/load: same images for the same seed")"""),
    ("md", """## The same with the command

```
keras-gen train --model diffusion --dataset fashion_mnist_10k --conditional --epochs 30 --out runs/diff
keras-gen sample --model runs/diff/model.keras -n 64 --steps 8 --guidance 2 --out grid.png
keras-gen export --model runs/diff/model.keras --out exported/
```

Text to image (a caption instead of a class) is the next notebook, `06b_text_to_image`:
`DCGAN(text=True)`, and `Diffusion(text=True)` the same way."""),
]


NOTEBOOKS["06b_text_to_image.ipynb"] = [
    ("md", """# Text to image: captions in, images out, on the phone

A text-conditioned model generates from a sentence: `model.generate(prompts=["a red sneaker"])`.
It trains with `model.fit` on `(images, captions)` batches, learns its vocabulary from the
training captions with `model.adapt(data)` (as Keras' preprocessing layers do; the vocabulary is
saved in the `.keras` file), and reads each caption with a small Transformer text encoder of its
own. Here a `DCGAN(text=True)` (the generator modulated by the caption, a projection
discriminator that judges image and caption together) learns the bundled
`fashion_mnist_10k_captions`: Fashion-MNIST garments tinted in 8 colours and captioned in several
phrasings ("a red sneaker", "a sneaker in red", ...). Ten (class, colour) pairs never appear in
training, so the model is asked for compositions it never saw. `Diffusion(text=True)` works the
same way. `QUICK = True` trains a narrow network on 512 images for 2 epochs (under a minute on
a 2-core CPU; the samples are rough blobs of about the right colour at best); `QUICK = False`
trains the defaults on the whole training split for 5 epochs (about 1,400 steps; several
minutes on a 2-core CPU, an estimate from the steps per minute in benchmarks/RESULTS.md)."""),
    ("code", """QUICK = True  # False: the DCGAN defaults, 5 epochs of the bundled captioned training split"""),
    ("code", """import os
import warnings

import keras
import numpy as np

import export
import keras_gen as kg

DATASET = "fashion_mnist_10k_captions"  # bundled: no download
if QUICK:
    SPLIT, EPOCHS, SIZE = "train[:512]", 2, dict(filters=16, text_dim=16)
else:
    SPLIT, EPOCHS, SIZE = "train", 5, {}  # {}: the constructor's defaults
OUT = "runs/nb_text"
os.makedirs(OUT, exist_ok=True)
info = kg.data.info(DATASET, text=True)
print(info)
print("(class, colour) pairs never in split 'train':", kg.data.UNSEEN_CAPTION_PAIRS)"""),
    ("md", """## Captioned data

`kg.data.load(name, text=True, ...)` yields `(images, captions)`, the captions a `tf.string`
vector. Your own captioned images load the same way: an `.npz` with `x` and `text`, or a folder
with `metadata.jsonl` (`{"file_name": ..., "text": ...}` per line, the Hugging Face convention)
or `captions.csv`."""),
    ("code", """images, captions = next(iter(kg.data.load(DATASET, text=True, batch_size=8, image_range="unit", seed=0)))
captions = [c.decode() for c in captions.numpy()]
print(captions)
kg.utils.show(images, cols=8)"""),
    ("md", """## Adapt the vocabulary, then `fit`

`text=True` replaces class labels by captions. `load(..., text=True, model=model)` takes the
model's image range and batch size; `adapt` reads the captions of the same dataset `fit` takes.
`fit` tokenizes the captions in the input pipeline (string ops stay out of the compiled step)."""),
    ("code", """model = kg.models.DCGAN(info.image_shape, text=True, seed=0, **SIZE)
data = kg.data.load(DATASET, split=SPLIT, text=True, model=model, seed=0)
model.adapt(data)
print(len(model.vocabulary), "words, most frequent first:", model.vocabulary[:12], "...")
model.compile()  # the family's optimisers; generate() uses the EMA generator
history = model.fit(data, epochs=EPOCHS, verbose=2)"""),
    ("md", """## Prompts: pairs seen in training, and pairs never seen

One row per prompt, 8 samples each. The first four (class, colour) pairs are in the training
captions; the last four are held out (`kg.data.UNSEEN_CAPTION_PAIRS`): the model has seen each
garment and each colour, never the two together. `kg.data.judge_colour` reads the colour back
from the pixels; `benchmarks/text_quality.py` judges class and colour over 100 samples a prompt."""),
    ("code", """nouns, colours = kg.data.CAPTION_CLASS_NOUNS, kg.data.CAPTION_COLOURS
seen_pairs = [(7, 0), (8, 2), (1, 1), (3, 3)]  # a red sneaker, a blue bag, a green trouser, a yellow dress
unseen_pairs = [(nouns.index(n), colours.index(c)) for n, c in kg.data.UNSEEN_CAPTION_PAIRS[6:]]
pairs = seen_pairs + unseen_pairs
assert not kg.data.is_unseen_pair(*zip(*seen_pairs)).any() and kg.data.is_unseen_pair(*zip(*unseen_pairs)).all()
prompts = [kg.data.caption(k, c) for k, c in pairs]
samples = model.generate(prompts=[p for p in prompts for _ in range(8)], seed=1)  # one image per prompt
right = kg.data.judge_colour(samples).reshape(len(prompts), 8) == np.array([c for _, c in pairs])[:, None]
for prompt, ok, kind in zip(prompts, right, ["seen"] * 4 + ["unseen"] * 4):
    print(f"{kind:6s} {prompt!r:24s} colour right in {ok.sum()}/8")
kg.utils.show(samples, cols=8)"""),
    ("md", """Equal prompts with equal seeds give equal images, and image k's noise is its own, so changing
one prompt changes one image. Words the model never saw map to an out-of-vocabulary token with a
warning that names them; a prompt without words, or longer than the model reads
(`sequence_length`), is an error that says so."""),
    ("code", """a = model.generate(prompts=["a red sneaker", "a blue bag"], seed=3)
np.testing.assert_array_equal(a, model.generate(prompts=["a red sneaker", "a blue bag"], seed=3))
b = model.generate(prompts=["a red sneaker", "a green bag"], seed=3)
np.testing.assert_array_equal(a[0], b[0])
print("another caption, another image:", float(np.abs(a[1] - b[1]).max()) > 0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model.generate(prompts=["a crimson sneaker"], seed=3)
print("warning:", caught[0].message)
for bad in ["...", " ".join(["red"] * (model.sequence_length + 1))]:
    try:
        model.generate(prompts=[bad])
    except ValueError as e:
        print("error:", e)"""),
    ("md", """## The shipped preset

`kg.models.DCGAN.from_preset("text_fashion_mnist_colours")` loads a text DCGAN trained on the
60k tinted, captioned Fashion-MNIST (its metadata holds the command that made it and its measured
numbers). It ships with keras-gen and loads offline; where this keras-gen has no such preset,
the cell says so and the notebook goes on with the model trained above."""),
    ("code", """PRESET = "text_fashion_mnist_colours"
if PRESET in getattr(kg.models.DCGAN, "presets", {}):
    preset = kg.models.DCGAN.from_preset(PRESET)
    print({k: v for k, v in kg.models.DCGAN.presets[PRESET].items() if k != "registered_name"})
    kg.utils.show(preset.generate(prompts=[p for p in prompts for _ in range(8)], seed=1), cols=8)
else:
    print(f"no preset {PRESET!r} in this keras-gen; the model trained above stands in")"""),
    ("md", """## Export: token ids in, images out

The tokenizer's string ops are not LiteRT builtins, so the exported `generate` signature takes
int32 token ids of a fixed length (and z), and the export writes `tokenizer.json` (the
vocabulary and the rule: lower-case A-Z, drop ASCII punctuation, split on whitespace) beside the
`.tflite`. `export.tokenize` is the plain-Python reference an app copies. The same strings give
the same images in LiteRT as in Keras."""),
    ("code", """from ai_edge_litert.interpreter import Interpreter

paths = export.tflite(model, f"{OUT}/exported", overwrite=True)
print(sorted(os.listdir(f"{OUT}/exported")))
rule = export.read_tokenizer(f"{OUT}/exported/tokenizer.json")  # what the app ships beside the .tflite
ids = np.array(export.tokenize(prompts, rule["vocabulary"], rule["sequence_length"]), np.int32)
print(repr(prompts[0]), "->", ids[0].tolist())
runner = Interpreter(model_path=str(paths["generate"])).get_signature_runner("generate")
z = model.latent_vectors(len(prompts), 0)
on_device = runner(z=z, tokens=ids)["images"]
in_python = model.generate(prompts=prompts, z=z)
print("LiteRT vs Python, largest pixel difference:", float(np.abs(on_device - in_python).max()))
np.testing.assert_allclose(on_device, in_python, atol=1e-4)
kg.utils.show(np.concatenate([on_device, in_python]), cols=len(prompts))  # top: LiteRT, bottom: Python"""),
    ("code", """model.save(f"{OUT}/text.keras")
restored = keras.models.load_model(f"{OUT}/text.keras")
assert restored.vocabulary == model.vocabulary
np.testing.assert_array_equal(restored.generate(prompts=prompts, seed=2), model.generate(prompts=prompts, seed=2))
print("save/load: the same vocabulary, the same images for the same prompts and seed")"""),
    ("md", """## The same with the command

```
keras-gen train --model dcgan --dataset fashion_mnist_10k_captions --text --out runs/text
keras-gen sample --model runs/text/model.keras --prompt "a purple sneaker" -n 16 --out purple.png
keras-gen sample --model runs/text/model.keras --prompts prompts.txt --out grid.png  # one per line
keras-gen export --model runs/text/model.keras --out exported/  # model.tflite + tokenizer.json
```

`--model diffusion --text` trains a `Diffusion(text=True)` instead, with classifier-free
guidance over the caption (`--guidance` at sampling)."""),
]


NOTEBOOKS["07_evaluation.ipynb"] = [
    ("md", """# Evaluation: FID and KID while training, your own images, resuming a run

How good are the samples? FID and KID compare the features of generated and real images
under a feature extractor: for 28x28 grey images keras-gen ships a small Fashion-MNIST
classifier (`kg.metrics.feature_extractor("fashion_mnist")`), so nothing is downloaded.
This notebook computes them during training with the `Evaluate` callback and afterwards with
`kg.metrics`, trains on your own images from a `folder:` with class sub-folders, and resumes a
training run with `kg.training.fit`. `QUICK = True` runs in about a minute on a 2-core CPU with
a narrow DCGAN, 512 images and 256 samples per FID (FID from so few samples is biased upwards:
compare only values computed with the same count); `QUICK = False` trains the default DCGAN for
20 epochs and measures FID on 10,000 samples, as `keras-gen evaluate` does."""),
    ("code", """QUICK = True  # False: the default DCGAN, 20 epochs, FID on 10,000 samples"""),
    ("code", """import os
import shutil

import keras
import numpy as np
from PIL import Image

import keras_gen as kg

if QUICK:
    SPLIT, SIZE, EPOCHS, SAMPLES = "train[:512]", dict(filters=16), 2, 256
else:
    SPLIT, SIZE, EPOCHS, SAMPLES = "train[:9000]", {}, 20, 10_000  # {}: the default width
OUT = "runs/nb_evaluation"
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)
info = kg.data.info("fashion_mnist_10k")"""),
    ("md", """## FID and KID during training: the `Evaluate` callback

`Evaluate(data)` computes the family's quality metric after each epoch into the Keras logs
(`val_fid`, `val_kid`), where `EarlyStopping`, `ModelCheckpoint` and `TensorBoard` see them
(list `Evaluate` first). Lower is better. Real images against other real images give about 0
with 10,000 of each (0.24), but more from fewer (2.7 from 1,000; the floor below is from fewer
still): a small `num_samples` biases FID upwards, so compare values of the same count only."""),
    ("code", """gan = kg.models.DCGAN((28, 28, 1), num_classes=info.num_classes, class_names=info.class_names,
                      seed=0, **SIZE)
gan.compile()
train = kg.data.load("fashion_mnist_10k", split=SPLIT, model=gan, seed=0)
held_out = kg.data.load("fashion_mnist_10k", split="train[9000:]", model=gan, shuffle=False)
history = gan.fit(train, epochs=EPOCHS, verbose=2, callbacks=[
    kg.callbacks.Evaluate(held_out, metrics=["fid", "kid"], num_samples=SAMPLES, log_dir=f"{OUT}/logs"),
    keras.callbacks.EarlyStopping(monitor="val_fid", mode="min", patience=3),
    keras.callbacks.TensorBoard(f"{OUT}/logs"),
])
print({k: [round(v, 3) for v in vs] for k, vs in history.history.items() if k.startswith("val_")})"""),
    ("md", """## The same numbers with `kg.metrics`

`kg.metrics.quality_metrics(samples, reference, metrics)` extracts features once for FID, KID,
precision and recall; `samples` may be a model (it generates) or images, `reference` a data
set or images. The two halves of the held-out images set the floor."""),
    ("code", """metrics = ["fid", "kid", "precision", "recall"]
ours = kg.metrics.quality_metrics(gan, held_out, metrics, num_samples=SAMPLES, data_range="tanh", verbose=0)
real = np.concatenate([b[0].numpy() for b in held_out])
floor = kg.metrics.quality_metrics(real[:500], real[500:], metrics, num_samples=SAMPLES, data_range="tanh",
                                   verbose=0)
for name in metrics:
    print(f"{name:10s} DCGAN {ours[name]:8.4f}   real vs real {floor[name]:8.4f}")
assert floor["fid"] < ours["fid"]"""),
    ("md", """## Your own images: `folder:`

A folder of images with one sub-folder per class is a data set: the sub-folders' names are
the class names (`DataInfo.class_names`), kept by the model and usable in `generate`. Here we
write a few Fashion-MNIST sneakers and bags as PNG files, as you would copy your own photos
(`channels=` and `image_size=` convert and resize mixed files)."""),
    ("code", """FOLDER = f"{OUT}/my_images"
images, labels = next(iter(kg.data.load("fashion_mnist_10k", split="train[:512]", batch_size=512,
                                        image_range="unit", with_labels=True, shuffle=False)))
for name in ("Sneaker", "Bag"):
    os.makedirs(f"{FOLDER}/{name}")
    chosen = images.numpy()[labels.numpy() == info.class_names.index(name)][:24]
    for i, image in enumerate(chosen):
        Image.fromarray((image[..., 0] * 255).round().astype(np.uint8)).save(f"{FOLDER}/{name}/{i:03d}.png")
mine = kg.data.info(f"folder:{FOLDER}")
print(mine)"""),
    ("code", """small = kg.models.DCGAN(mine.image_shape, num_classes=mine.num_classes, class_names=mine.class_names,
                        seed=0, **SIZE)
small.compile()
small.fit(kg.data.load(f"folder:{FOLDER}", model=small, seed=0), epochs=EPOCHS, verbose=0)
print("FID against my images:", round(kg.metrics.quality_metrics(
    small, kg.data.load(f"folder:{FOLDER}", model=small, shuffle=False), ["fid"],
    num_samples=48, data_range="tanh", verbose=0)["fid"], 2))
kg.utils.show(small.generate(8, seed=0, labels=["Sneaker"] * 4 + ["Bag"] * 4), cols=8,
              titles=["Sneaker"] * 4 + ["Bag"] * 4)"""),
    ("md", """## Resuming a run: `kg.training.fit`

`kg.training.fit(model, data, epochs, checkpoint_dir)` is one `model.fit` with atomic
checkpoints (both GAN optimisers, the EMA weights, the step and the position in the epoch).
Call it again after a crash, a kill or with more `epochs`, and it continues where it stopped.
`kg.training.epoch_loader` gives each epoch its own shuffle, so a resumed run sees the data a
run without the break would have seen: below, 1 epoch then a resume to 2 equals 2 epochs in
one go. `keras-gen train --resume` does the same."""),
    ("code", """def run(checkpoint_dir, epochs):
    model = kg.models.DCGAN((8, 8, 1), latent_dim=16, filters=8, seed=0)
    model.compile()
    data = kg.training.epoch_loader("digits", seed=0, model=model)
    kg.training.fit(model, data, epochs=epochs, checkpoint_dir=checkpoint_dir, checkpoint_every=10)
    return model


run(f"{OUT}/resumed", epochs=1)              # stops after one epoch (or is killed)
resumed = run(f"{OUT}/resumed", epochs=2)    # a new process: trains only the second epoch
straight = run(f"{OUT}/straight", epochs=2)  # one run of two epochs
worst = max(float(np.abs(a - b).max()) for a, b in zip(resumed.get_weights(), straight.get_weights()))
print("largest weight difference, resumed vs straight:", worst)
assert worst < 1e-5
kg.utils.show(resumed.generate(16, seed=0), cols=8)"""),
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

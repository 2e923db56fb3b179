"""Network builders the families share, each a function sized from the image shape.

- `dcgan_generator`, `dcgan_discriminator`: the GAN pair (DCGAN).
- `conv_encoder`, `conv_decoder`: the VAE pair (a Gaussian posterior head, likelihood params out).
- `unet_generator`, `patchgan_discriminator`: the pix2pix pair (image in, image out; a
  conditional discriminator with one logit per patch).
- `vqvae_encoder`, `vqvae_decoder`: the VQ-VAE pair (a grid of vectors to quantise; likelihood
  params out).

Every builder takes the model's `seed` and draws its initial weights from `Initializers`, so
equal seeds give equal networks, and builds under the dtype policy the model was given
(`policy_scope`), so a `mixed_float16` model has `mixed_float16` layers also after loading.
"""

from __future__ import annotations

import contextlib
import math

import keras

from keras_gen.layers.dropout import ReplicaExactDropout

# Seeds of the networks of one model are spaced this far apart (fewer layers than this per
# network), so streams never share a seed.
_STREAM_SPACING = 500
_SEED_MULTIPLIER = 1009


class Initializers:
    """A new seeded initialiser per layer, so equal seeds give equal networks.

    kind: "glorot_uniform" (Keras' default) or "dcgan_normal" (N(0, 0.02), Radford et al.
      2016). stream: separates the networks of one model (generator 0, discriminator 1, ...).
    """

    def __init__(self, seed, kind="glorot_uniform", stream=0):
        if kind not in ("glorot_uniform", "dcgan_normal"):
            raise ValueError(f"kind must be 'glorot_uniform' or 'dcgan_normal'; got {kind!r}.")
        self.kind = kind
        self.seed = None if seed is None else int(seed) * _SEED_MULTIPLIER + _STREAM_SPACING * stream

    def __call__(self):
        seed = None
        if self.seed is not None:
            self.seed += 1
            seed = self.seed
        if self.kind == "dcgan_normal":
            return keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
        return keras.initializers.GlorotUniform(seed=seed)


@contextlib.contextmanager
def policy_scope(policy):
    """Layers created inside take `policy` (a name or DTypePolicy; None: leave the global one)."""
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def upsampling_plan(side):
    """(start side, number of stride-2 up- or downsamplings): halve while the result stays >= 3
    and even, e.g. 28 -> 7 x 2, 32 -> 4 x 3, 64 -> 4 x 4 (at most 5)."""
    steps = 0
    while side % 2 == 0 and side // 2 >= 3 and steps < 5:
        side //= 2
        steps += 1
    return side, steps


def _label_input():
    return keras.Input((), dtype="int32", name="label")


def _concat_label(x, inputs, num_classes, size, init):
    """With `num_classes`, appends an int32 label input to `inputs` and returns `x` with the
    label's embedding (`size` values) concatenated; else `x` unchanged."""
    if num_classes is None:
        return x
    label = _label_input()
    inputs.append(label)
    embedded = keras.layers.Embedding(
        num_classes, size, embeddings_initializer=init(), name="label_embedding"
    )(label)
    return keras.layers.Concatenate()([x, embedded])


def _text_input(text_encoder, inputs):
    """Appends an int32 token-id input to `inputs`; returns the caption's pooled embedding."""
    tokens = keras.Input((text_encoder.sequence_length,), dtype="int32", name="tokens")
    inputs.append(tokens)
    _, pooled = text_encoder(tokens)
    return pooled


@keras.saving.register_keras_serializable(package="keras_gen")
class FiLM(keras.layers.Layer):
    """Feature-wise linear modulation (Perez et al. 2018): `[features, condition]` ->
    features * (1 + gamma) + beta, with gamma and beta per channel from a dense layer of the
    condition vector, initialised at zero so the block starts as the identity."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.dense = keras.layers.Dense(2 * self.channels, kernel_initializer="zeros", name="film")

    def build(self, input_shape):
        self.dense.build(input_shape[1])

    def call(self, inputs):
        features, condition = inputs
        gamma, beta = keras.ops.split(self.dense(condition), 2, axis=-1)
        return features * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _model(inputs, outputs, name):
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name)


# --------------------------------------------------------------------------------------------
# GAN


UPSAMPLING = ("transpose", "resize")


def dcgan_generator(
    image_shape, latent_dim, num_classes=None, filters=64, image_range="tanh",
    upsampling="transpose", seed=None, text_encoder=None, film=False,
):
    """z (and a label, or token ids through `text_encoder`, a `keras_gen.text.TextEncoder`
    whose pooled caption embedding is concatenated with z and, with `film`, modulates every
    upsampling's features: `FiLM`) -> images: a dense projection to a small map, stride-2
    upsamplings
    (4x4 transposed convolutions, or nearest-neighbour resizing + a 3x3 convolution, which has no
    checkerboard pattern) with synchronised batch norm (N replicas train as one) and ReLU, and a
    tanh (or sigmoid for image_range="unit") 3x3 output. Widths halve from filters * 2^ups to
    `filters` at full size."""
    init = Initializers(seed, "dcgan_normal", stream=0)
    h, _, c = image_shape
    start, ups = upsampling_plan(h)
    width = min(filters * 2**ups, 512)
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    x = _concat_label(z, inputs, num_classes, min(latent_dim, 50), init)
    caption = None if text_encoder is None else _text_input(text_encoder, inputs)
    if caption is not None:
        x = keras.layers.Concatenate()([x, caption])
    x = keras.layers.Dense(start * start * width, use_bias=False, kernel_initializer=init())(x)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Reshape((start, start, width))(x)
    for _ in range(ups):
        width = max(width // 2, filters)
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(
                width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=init()
            )(x)
        else:
            x = keras.layers.UpSampling2D(interpolation="nearest")(x)
            x = keras.layers.Conv2D(
                width, 3, padding="same", use_bias=False, kernel_initializer=init()
            )(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        if film and caption is not None:
            x = FiLM(width)([x, caption])
        x = keras.layers.ReLU()(x)
    activation = "tanh" if image_range == "tanh" else "sigmoid"
    images = keras.layers.Conv2D(
        c, 3, padding="same", activation=activation, kernel_initializer=init(), dtype="float32"
    )(x)
    return _model(inputs, images, "generator")


DISCRIMINATOR_STYLES = ("dcgan", "sngan")


def dcgan_discriminator(
    image_shape, num_classes=None, filters=64, spectral_norm=False, dropout=0.0, batch_norm=False,
    style="dcgan", seed=None, text_encoder=None, text_mode="matching",
):
    """Images (and a label) -> one logit: stride-2 4x4 convolutions with LeakyReLU (style
    "sngan": each preceded by a 3x3 convolution, and one more 3x3 convolution at the smallest
    scale, the "standard CNN" of Miyato et al. 2018), optional spectral norm, batch norm after
    the first layer (off by default: it couples the examples of a batch, so the WGAN-GP penalty
    and R1 are no longer per example) and replica-exact dropout before the last layer; a label
    enters by projection (Miyato & Koyama 2018). Token ids enter through `text_encoder` (a
    `keras_gen.text.TextEncoder`): text_mode "projection" adds <W pooled, features> to the
    logit like a label; "matching" (Reed et al. 2016) tiles a projection of the pooled caption
    onto the last feature map and mixes the two with a 1x1 convolution."""
    init = Initializers(seed, "dcgan_normal", stream=1)
    h, _, _ = image_shape
    _, downs = upsampling_plan(h)

    def wrap(layer):
        return keras.layers.SpectralNormalization(layer) if spectral_norm else layer

    images = keras.Input(tuple(image_shape), name="images")
    inputs = [images]
    x = images
    width = filters
    def conv(x, width, kernel, strides, normalise):
        x = wrap(keras.layers.Conv2D(
            width, kernel, strides=strides, padding="same", kernel_initializer=init()))(x)
        if normalise:
            x = keras.layers.BatchNormalization(synchronized=True)(x)
        return keras.layers.LeakyReLU(0.2)(x)

    for i in range(downs):
        if style == "sngan":
            x = conv(x, width, 3, 1, batch_norm and i > 0)
        x = conv(x, width, 4, 2, batch_norm and i > 0)
        width = min(width * 2, 512)
    if style == "sngan":
        x = conv(x, width, 3, 1, batch_norm)
    caption = None if text_encoder is None else _text_input(text_encoder, inputs)
    if caption is not None and text_mode == "matching":
        side = x.shape[1]
        tiled = keras.layers.Dense(min(width, 128), kernel_initializer=init(), name="text_tile")(caption)
        tiled = keras.layers.LeakyReLU(0.2)(tiled)
        tiled = keras.layers.Reshape((1, 1, tiled.shape[-1]))(tiled)
        tiled = keras.layers.UpSampling2D(size=(side, side))(tiled)
        x = conv(keras.layers.Concatenate()([x, tiled]), width, 1, 1, False)
    x = keras.layers.Flatten()(x)
    if dropout:
        x = ReplicaExactDropout(dropout, seed=None if seed is None else seed + 7)(x)
    logits = wrap(keras.layers.Dense(1, kernel_initializer=init(), dtype="float32"))(x)
    if num_classes is not None:
        label = _label_input()
        inputs.append(label)
        # Projection: logit += <embed(y), features>.
        embedded = keras.layers.Embedding(
            num_classes, x.shape[-1], embeddings_initializer=init(), name="label_projection"
        )(label)
        projection = keras.layers.Dot(axes=1)([embedded, x])
        logits = keras.layers.Add(dtype="float32")([logits, projection])
    if caption is not None and text_mode == "projection":
        embedded = keras.layers.Dense(x.shape[-1], use_bias=False, kernel_initializer=init(),
                                      name="text_projection")(caption)
        projection = keras.layers.Dot(axes=1)([embedded, x])
        logits = keras.layers.Add(dtype="float32")([logits, projection])
    return _model(inputs, logits, "discriminator")


# --------------------------------------------------------------------------------------------
# VAE


def _vae_widths(filters, count):
    return [min(filters * 2 ** (i + 1), 256) for i in range(count)]


def conv_encoder(image_shape, latent_dim, num_classes=None, filters=32, seed=None):
    """Images in [0, 1] (and a label) -> [mean, logvar]: rescaled to [-1, 1], a 3x3 convolution,
    stride-2 4x4 convolutions (SiLU) down to 7, 4 or 3 pixels, two dense heads. No batch norm,
    so an image's ELBO does not depend on its batch."""
    init = Initializers(seed, stream=0)
    h, _, _ = image_shape
    _, downs = upsampling_plan(h)
    images = keras.Input(tuple(image_shape), name="images")
    inputs = [images]
    x = keras.layers.Rescaling(2.0, offset=-1.0)(images)
    x = keras.layers.Conv2D(
        filters, 3, padding="same", activation="silu", kernel_initializer=init()
    )(x)
    for width in _vae_widths(filters, downs):
        x = keras.layers.Conv2D(
            width, 4, strides=2, padding="same", activation="silu", kernel_initializer=init()
        )(x)
    x = _concat_label(keras.layers.Flatten()(x), inputs, num_classes, 16, init)
    mean = keras.layers.Dense(latent_dim, kernel_initializer=init(), dtype="float32", name="mean")(x)
    logvar = keras.layers.Dense(
        latent_dim, kernel_initializer=init(), dtype="float32", name="logvar"
    )(x)
    return _model(inputs, [mean, logvar], "encoder")


def conv_decoder(
    image_shape, latent_dim, num_classes=None, filters=32, params_per_channel=1, seed=None
):
    """z (and a label) -> likelihood parameters (H, W, params_per_channel * C): the encoder's
    mirror image with transposed convolutions, ending in a 3x3 convolution."""
    init = Initializers(seed, stream=1)
    h, _, c = image_shape
    start, ups = upsampling_plan(h)
    widths = _vae_widths(filters, ups)[::-1]
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    x = _concat_label(z, inputs, num_classes, 16, init)
    first = widths[0] if widths else filters
    x = keras.layers.Dense(start * start * first, activation="silu", kernel_initializer=init())(x)
    x = keras.layers.Reshape((start, start, first))(x)
    params = _likelihood_params(x, widths[1:] + [filters], "silu", c * params_per_channel, init)
    return _model(inputs, params, "decoder")


def _likelihood_params(x, widths, activation, num_params, init):
    """The end of both decoders: a stride-2 4x4 transposed convolution per width, then a 3x3
    convolution to the likelihood's parameters (float32 under any dtype policy)."""
    for width in widths:
        x = keras.layers.Conv2DTranspose(
            width, 4, strides=2, padding="same", activation=activation, kernel_initializer=init()
        )(x)
    return keras.layers.Conv2D(
        num_params, 3, padding="same", kernel_initializer=init(), dtype="float32",
        name="likelihood_params",
    )(x)


# --------------------------------------------------------------------------------------------
# Pix2Pix: a U-Net generator and a conditional PatchGAN discriminator (Isola et al. 2017)

UNET_UPSAMPLING = ("transpose", "resize")


def unet_depth(height, width):
    """Stride-2 levels of `unet_generator`: the smaller side, padded up to a power of two, is
    halved down to 2 pixels (28 -> pad 32 -> 4 levels; 8 -> 2; 256 -> 7), at most 8 levels."""
    side = min(height, width)
    return max(1, min(8, math.ceil(math.log2(side)) - 1))


def unet_generator(
    input_shape, output_channels, filters=64, depth=None, upsampling="transpose",
    image_range="tanh", seed=None,
):
    """Images (H, W, C_in) -> images (H, W, output_channels) in `image_range`: the pix2pix U-Net.

    Encoder: `depth` stride-2 4x4 convolutions (widths filters, 2x, 4x, 8x, then 8x), batch norm
    (after the first) and LeakyReLU(0.2). Decoder: the mirror image, upsampling by a stride-2 4x4
    transposed convolution (`upsampling="transpose"`) or by nearest-neighbour resizing and a
    3x3 convolution (`"resize"`, free of the checkerboard pattern), batch norm and ReLU, each
    level concatenated with the encoder's output of the same size; a tanh (or sigmoid) output.

    Batch norm, not instance norm: it folds into the convolutions, so full-integer (int8) TFLite
    models keep integer kernels throughout. It is synchronised across replicas, so N replicas
    train as one. Sides that do not divide by 2**depth (28 with 4 levels) are zero-padded at
    the input and the output is cropped back. No dropout: Keras' Dropout draws its mask per
    replica, and pix2pix's authors found the generator ignores that noise anyway.
    """
    if upsampling not in UNET_UPSAMPLING:
        raise ValueError(f"upsampling must be one of {UNET_UPSAMPLING}; got {upsampling!r}.")
    init = Initializers(seed, "dcgan_normal", stream=0)
    h, w, _ = input_shape
    depth = unet_depth(h, w) if depth is None else depth
    if not 1 <= depth <= 8 or min(h, w) < 2**depth:
        raise ValueError(
            f"depth must be from 1 to 8 with 2**depth <= the smaller image side ({min(h, w)}); "
            f"got {depth}."
        )
    unit = 2**depth
    pad_h, pad_w = -h % unit, -w % unit
    padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    widths = [min(filters * 2**i, filters * 8) for i in range(depth)]

    def upsample(x, width, **kwargs):
        if upsampling == "transpose":
            return keras.layers.Conv2DTranspose(
                width, 4, strides=2, padding="same", kernel_initializer=init(), **kwargs)(x)
        x = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
        return keras.layers.Conv2D(width, 3, padding="same", kernel_initializer=init(), **kwargs)(x)

    images = keras.Input(tuple(input_shape), name="input_image")
    x = keras.layers.ZeroPadding2D(padding)(images) if pad_h or pad_w else images
    skips = []
    for i, width in enumerate(widths):
        x = keras.layers.Conv2D(
            width, 4, strides=2, padding="same", use_bias=i == 0, kernel_initializer=init()
        )(x)
        if i > 0:
            x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        skips.append(x)
    for skip, width in zip(reversed(skips[:-1]), reversed(widths[:-1])):
        x = upsample(x, width, use_bias=False)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Concatenate()([x, skip])
    activation = "tanh" if image_range == "tanh" else "sigmoid"
    x = upsample(x, output_channels, activation=activation, dtype="float32")
    if pad_h or pad_w:
        x = keras.layers.Cropping2D(padding, dtype="float32")(x)
    return keras.Model(images, x, name="generator")


def patchgan_layers(height, width):
    """Stride-2 layers of `patchgan_discriminator` by default: the most (at most 3, the 70x70
    PatchGAN of pix2pix at 256x256) whose receptive field is at most half the smaller side, and
    at least 1 (28x28 -> 1 layer, 16x16 patches; 128 -> 2, 34x34)."""
    layers = 1
    while layers < 3 and patchgan_receptive_field(layers + 1) <= min(height, width) / 2:
        layers += 1
    return layers


def patchgan_receptive_field(num_layers):
    """Side of the input patch one output logit of `patchgan_discriminator` sees: two stride-1
    4x4 convolutions (7 pixels) widened by each stride-2 4x4 layer (r -> 2r + 2): 16, 34, 70."""
    field = 7
    for _ in range(num_layers):
        field = 2 * field + 2
    return field


def patchgan_discriminator(input_shape, target_shape, filters=64, num_layers=None, seed=None):
    """[input image, target image] -> a map of logits, one per patch (`patchgan_receptive_field`
    pixels wide): is this target a real translation of this input?

    The images are concatenated along channels (a conditional discriminator), then `num_layers`
    stride-2 4x4 convolutions (widths filters, 2x, 4x, at most 8x), a stride-1 4x4 convolution,
    each with batch norm (after the first, synchronised across replicas) and LeakyReLU(0.2), and
    a stride-1 4x4 convolution to one logit per position.
    """
    init = Initializers(seed, "dcgan_normal", stream=1)
    h, w, _ = target_shape
    num_layers = patchgan_layers(h, w) if num_layers is None else num_layers
    inputs = keras.Input(tuple(input_shape), name="input_image")
    targets = keras.Input(tuple(target_shape), name="target_image")
    x = keras.layers.Concatenate()([inputs, targets])
    width = filters
    for i in range(num_layers + 1):
        x = keras.layers.Conv2D(
            width, 4, strides=2 if i < num_layers else 1, padding="same", use_bias=i == 0,
            kernel_initializer=init(),
        )(x)
        if i > 0:
            x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        width = min(width * 2, filters * 8)
    logits = keras.layers.Conv2D(
        1, 4, padding="same", kernel_initializer=init(), dtype="float32", name="patch_logits"
    )(x)
    return keras.Model([inputs, targets], logits, name="discriminator")
# VQ-VAE


def _residual_stack(x, filters, blocks, init):
    """The VQ-VAE paper's residual blocks, x + conv1x1(relu(conv3x3(relu(x)))), then a ReLU."""
    for _ in range(blocks):
        h = keras.layers.ReLU()(x)
        h = keras.layers.Conv2D(
            max(filters // 2, 1), 3, padding="same", activation="relu", kernel_initializer=init()
        )(h)
        h = keras.layers.Conv2D(filters, 1, kernel_initializer=init())(h)
        x = keras.layers.Add()([x, h])
    return keras.layers.ReLU()(x)


def vqvae_code_shape(image_shape, downsamplings):
    """The (h, w) of the code grid: the image's side halved `downsamplings` times."""
    h, w, _ = image_shape
    return h // 2**downsamplings, w // 2**downsamplings


def vqvae_encoder(image_shape, embedding_dim, filters=64, residual_blocks=2, downsamplings=2,
                  seed=None):
    """Images in [0, 1] -> a grid (h, w, embedding_dim) of vectors to quantise: rescaled to
    [-1, 1], stride-2 4x4 convolutions (ReLU; 28 -> 14 -> 7 with two), a 3x3 convolution,
    residual blocks, and a 1x1 projection to the code size (van den Oord et al. 2017). No batch
    norm, so an image's codes do not depend on its batch."""
    init = Initializers(seed, stream=0)
    images = keras.Input(tuple(image_shape), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0)(images)
    for i in range(downsamplings):
        width = filters if i == downsamplings - 1 else max(filters // 2, 1)
        x = keras.layers.Conv2D(
            width, 4, strides=2, padding="same", activation="relu", kernel_initializer=init()
        )(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=init())(x)
    x = _residual_stack(x, filters, residual_blocks, init)
    vectors = keras.layers.Conv2D(
        embedding_dim, 1, kernel_initializer=init(), dtype="float32", name="pre_quantization"
    )(x)
    return keras.Model(images, vectors, name="encoder")


def vqvae_decoder(image_shape, embedding_dim, filters=64, residual_blocks=2, downsamplings=2,
                  params_per_channel=1, seed=None):
    """Quantised vectors (h, w, embedding_dim) -> likelihood parameters (H, W, params_per_channel
    * C): a 3x3 convolution, residual blocks, stride-2 4x4 transposed convolutions (ReLU) back
    to the image size, and a 3x3 convolution."""
    init = Initializers(seed, stream=1)
    c = image_shape[2]
    vectors = keras.Input(vqvae_code_shape(image_shape, downsamplings) + (embedding_dim,), name="vectors")
    x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=init())(vectors)
    x = _residual_stack(x, filters, residual_blocks, init)
    widths = [filters] * (downsamplings - 1) + [max(filters // 2, 1)]
    params = _likelihood_params(x, widths, "relu", c * params_per_channel, init)
    return keras.Model(vectors, params, name="decoder")


# --------------------------------------------------------------------------------------------
# Diffusion


def diffusion_unet(image_shape, widths=(32, 64, 96), num_classes=None, attention=True,
                   blocks=1, groups=8, seed=None, text_encoder=None, cross_attention=False):
    """The denoiser of `keras_gen.models.Diffusion`: [noisy images (H, W, C), times (), and
    labels () when conditional] -> one prediction per value (H, W, C), float32.

    A U-Net: one resolution per entry of `widths` (halved by stride-2 convolutions, doubled by
    nearest upsampling + 3x3 convolution, skips concatenated), `blocks` residual blocks per
    resolution on each side (GroupNorm, swish, 3x3 convolution, twice), a middle block at the
    lowest resolution with single-head self-attention before it when `attention`. The time
    (sinusoidal features, then a 2-layer MLP) and the label (an embedding with one extra row,
    index num_classes, the "no label" of classifier-free guidance) are summed into one vector
    that modulates every residual block (FiLM: scale and shift after its second norm), so the
    condition reaches every layer; a concatenated label embedding measured ignored (issue 22).
    The last convolution starts at zero (the first predictions are 0, a stable start).

    Text (`text_encoder`, a `keras_gen.text.TextEncoder`): the third input is int32 token ids
    (batch, sequence_length) in place of the label. The caption's pooled embedding, projected,
    is added to the time embedding as the label's is (so it reaches every block by FiLM); the
    empty caption (all padding, the "no caption" of classifier-free guidance) pools to zeros, so
    its embedding is the projection's learned bias. `cross_attention`: also attention from the
    lowest-resolution feature map to the caption's token states (`CaptionCrossAttention`), after
    the self-attention."""
    from keras_gen.layers.diffusion import (CaptionCrossAttention, FiLM, SinusoidalEmbedding,
                                            SpatialSelfAttention)

    h, w, c = image_shape
    widths = tuple(int(v) for v in widths)
    factor = 2 ** (len(widths) - 1)
    if not widths or h % factor or w % factor:
        raise ValueError(
            f"widths={widths} halves the image {len(widths) - 1} times, so its height and width "
            f"must be multiples of {factor}; got {h}x{w}. Pass fewer widths."
        )
    init = Initializers(seed)
    embed_dim = 4 * widths[0]
    images = keras.Input(image_shape, name="noisy_images")
    time = keras.Input((), name="time")
    inputs = [images, time]
    emb = SinusoidalEmbedding(widths[0])(time)
    emb = keras.layers.Dense(embed_dim, activation="swish", kernel_initializer=init())(emb)
    emb = keras.layers.Dense(embed_dim, kernel_initializer=init())(emb)
    if num_classes is not None:
        label = _label_input()
        inputs.append(label)
        label_emb = keras.layers.Embedding(
            num_classes + 1, embed_dim, embeddings_initializer=init(), name="label_embedding"
        )(label)
        emb = keras.layers.Add()([emb, label_emb])
    states = tokens = None
    if text_encoder is not None:
        tokens = keras.Input((text_encoder.sequence_length,), dtype="int32", name="tokens")
        inputs.append(tokens)
        states, pooled = text_encoder(tokens)
        caption_emb = keras.layers.Dense(embed_dim, kernel_initializer=init(),
                                         name="caption_embedding")(pooled)
        emb = keras.layers.Add()([emb, caption_emb])
    emb = keras.layers.Activation("swish")(emb)

    def norm(x):
        return keras.layers.GroupNormalization(min(groups, x.shape[-1]))(x)

    def residual(x, width):
        skip = x if x.shape[-1] == width else keras.layers.Conv2D(
            width, 1, kernel_initializer=init())(x)
        x = keras.layers.Activation("swish")(norm(x))
        x = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer=init())(x)
        film = keras.layers.Dense(2 * width, kernel_initializer="zeros")(emb)
        x = FiLM()([norm(x), film])
        x = keras.layers.Activation("swish")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", kernel_initializer=init())(x)
        return keras.layers.Add()([skip, x])

    x = keras.layers.Conv2D(widths[0], 3, padding="same", kernel_initializer=init())(images)
    skips = []
    for level, width in enumerate(widths):
        for _ in range(blocks):
            x = residual(x, width)
        skips.append(x)
        if level < len(widths) - 1:
            x = keras.layers.Conv2D(widths[level + 1], 3, strides=2, padding="same",
                                    kernel_initializer=init())(x)
    if attention:
        x = SpatialSelfAttention(groups, kernel_initializer=init())(x)
    if cross_attention and states is not None:
        x = CaptionCrossAttention(groups, kernel_initializer=init())([x, states, tokens])
    x = residual(x, widths[-1])
    for level in reversed(range(len(widths))):
        x = keras.layers.Concatenate()([x, skips[level]])
        for _ in range(blocks):
            x = residual(x, widths[level])
        if level > 0:
            x = keras.layers.UpSampling2D(2)(x)
            x = keras.layers.Conv2D(widths[level - 1], 3, padding="same", kernel_initializer=init())(x)
    x = keras.layers.Activation("swish")(norm(x))
    out = keras.layers.Conv2D(c, 3, padding="same", kernel_initializer="zeros", dtype="float32",
                              name="prediction")(x)
    return keras.Model(inputs, out, name="denoiser")

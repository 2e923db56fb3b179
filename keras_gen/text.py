"""Tokenizer and text encoder for text-conditioned models.

    tokenizer = kg.text.TextTokenizer(max_tokens=1000, sequence_length=16)
    tokenizer.adapt(data)                      # the (images, captions) dataset `fit` takes
    ids = tokenizer(captions)                  # tf.string (batch,) -> int32 (batch, 16)
    ids = tokenizer.encode(["a red sneaker"])  # from Python; unknown words warn by name
    encoder = kg.text.TextEncoder(tokenizer.max_tokens, tokenizer.sequence_length)
    states, pooled = encoder(ids)              # (batch, 16, dim) per token, (batch, dim)

The tokenisation rule is fixed and simple enough to copy into an app (`export.tokenize` is the
pure-Python reference; a test holds the two to the same ids):
  1. ASCII letters A-Z are lower-cased (other characters are left alone);
  2. the 32 ASCII punctuation characters (`string.punctuation`) are removed;
  3. the text is split on runs of ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r);
  4. each word maps to its id: 0 is padding, 1 is out-of-vocabulary, the vocabulary's words are
     2, 3, ...; the ids are cut or padded with 0 at the end to `sequence_length`.

The tokenizer's string ops are not TFLite builtins, so exported generators take the ids; the
encoder (embeddings, attention, layer norms, dense layers) converts with builtin ops only.
"""

from __future__ import annotations

import collections
import re
import string
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gen.configs import ListedConfig

from keras_gen import checks
from keras_gen.families import Option

PAD_ID = 0
OOV_ID = 1
FIRST_WORD_ID = 2
PUNCTUATION = string.punctuation
WHITESPACE = " \t\n\x0b\x0c\r"
_PUNCTUATION_RE = "[" + re.escape(PUNCTUATION) + "]"


def padding_mask(token_ids):
    """True where `token_ids` hold a word (known or not), False on padding."""
    return keras.ops.not_equal(token_ids, PAD_ID)


@keras.saving.register_keras_serializable(package="keras_gen")
class TextTokenizer(ListedConfig, keras.layers.Layer):
    """Captions (tf.string, shape (batch,)) -> int32 token ids (batch, sequence_length).

    Like Keras' preprocessing layers, the vocabulary is learnt with `adapt(data)` and kept in the
    layer's config, so it travels inside the `.keras` file. `max_tokens` bounds the ids (padding
    and out-of-vocabulary included), so an embedding of `max_tokens` rows can be built before
    `adapt` sees any caption.
    """

    def __init__(self, max_tokens=1000, sequence_length=16, vocabulary=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # String ops do not compile with XLA (as for keras.layers.TextVectorization): a model
        # that calls this layer in its step resolves jit_compile="auto" to False. A model that
        # wants XLA tokenizes in the tf.data pipeline instead.
        self.supports_jit = False
        self.max_tokens = checks.positive_int("max_tokens", max_tokens)
        if self.max_tokens <= FIRST_WORD_ID:
            raise ValueError(
                f"max_tokens must be > {FIRST_WORD_ID} (ids 0 and 1 are padding and "
                f"out-of-vocabulary); got {max_tokens!r}."
            )
        self.sequence_length = checks.positive_int("sequence_length", sequence_length)
        self.set_vocabulary([] if vocabulary is None else vocabulary)

    # -- vocabulary

    @property
    def vocabulary(self):
        """The words, in id order from `FIRST_WORD_ID`."""
        return list(self._vocabulary)

    def set_vocabulary(self, vocabulary):
        words = [w.decode() if isinstance(w, bytes) else w for w in vocabulary]
        bad = [w for w in words if not isinstance(w, str) or w != _standard_word(w)]
        if bad:
            raise ValueError(
                "vocabulary must hold single lower-case words without ASCII punctuation or "
                f"whitespace (what the tokenizer's rule leaves); got {bad[:5]}."
            )
        if len(set(words)) != len(words):
            dup = [w for w, c in collections.Counter(words).items() if c > 1]
            raise ValueError(f"vocabulary must not repeat words; repeated: {dup[:5]}.")
        if len(words) + FIRST_WORD_ID > self.max_tokens:
            raise ValueError(
                f"a vocabulary of {len(words)} words needs max_tokens >= "
                f"{len(words) + FIRST_WORD_ID}; this tokenizer has max_tokens={self.max_tokens}. "
                "Give a larger max_tokens or a shorter vocabulary."
            )
        self._vocabulary = tuple(words)
        self._ids = {w: i + FIRST_WORD_ID for i, w in enumerate(words)}
        # A table that never matches (no word is empty) stands in for an empty vocabulary.
        keys = list(words) or [""]
        values = list(range(FIRST_WORD_ID, FIRST_WORD_ID + len(words))) or [PAD_ID]
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.string), tf.constant(values, tf.int64)
            ),
            default_value=OOV_ID,
        )

    def adapt(self, data, batch_size=256):
        """Learns the vocabulary: the words of the captions in `data`, most frequent first (ties
        alphabetically), at most `max_tokens - 2` of them.

        `data`: a `tf.data.Dataset` of captions or of `(images, captions, ...)` tuples (the
        dataset `fit` takes), or a list / array / tensor of strings.
        """
        counts = collections.Counter()
        for captions in _caption_batches(data, batch_size):
            for words in self.split(captions).to_list():
                counts.update(w.decode() for w in words)
        if not counts:
            raise ValueError(
                "adapt found no words: data must hold captions (a dataset of strings or of "
                "(images, captions) tuples, or a list of strings) with at least one word."
            )
        ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
        self.set_vocabulary([w for w, _ in ranked[: self.max_tokens - FIRST_WORD_ID]])
        return self

    # -- tokenising

    def split(self, captions):
        """The rule's words of each caption: a `tf.RaggedTensor` of strings (batch, None)."""
        captions = tf.convert_to_tensor(captions, tf.string)
        # tf.strings.lower without an encoding changes only A-Z; split() with no separator
        # splits on runs of ASCII whitespace and drops empty words.
        text = tf.strings.regex_replace(tf.strings.lower(captions), _PUNCTUATION_RE, "")
        return tf.strings.split(text)

    def call(self, captions):
        words = self.split(captions)
        ids = tf.ragged.map_flat_values(self._table.lookup, words)
        ids = ids.to_tensor(default_value=PAD_ID, shape=[None, self.sequence_length])
        return tf.cast(ids, "int32")

    def encode(self, texts):
        """Token ids (int32 NumPy, (len(texts), sequence_length)) of Python strings; words not
        in the vocabulary map to the out-of-vocabulary id with a warning that names them."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            given = [type(t).__name__ for t in texts if not isinstance(t, str)]
            raise ValueError(f"texts must be strings (one caption each); got {given[:3]}.")
        if not texts:
            return np.zeros((0, self.sequence_length), np.int32)
        unknown = sorted({
            w.decode() for words in self.split(texts).to_list() for w in words
        } - set(self._vocabulary))
        if unknown:
            warnings.warn(
                f"{len(unknown)} word(s) not in the vocabulary map to the out-of-vocabulary "
                f"token: {', '.join(map(repr, unknown[:20]))}"
                + (" ..." if len(unknown) > 20 else "")
                + ". The model never saw them in a caption; rephrase with known words "
                "(tokenizer.vocabulary).",
                stacklevel=2,
            )
        return np.asarray(self(tf.constant(texts)), np.int32)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.sequence_length,)

    config_args = ("max_tokens", "sequence_length", "vocabulary")


def _standard_word(word):
    """What the rule leaves of `word` when it is a single word (used to check vocabularies)."""
    lowered = word.translate(str.maketrans(string.ascii_uppercase, string.ascii_lowercase))
    stripped = lowered.translate(str.maketrans("", "", PUNCTUATION))
    return stripped if stripped and not any(c in WHITESPACE for c in stripped) else None


def _caption_batches(data, batch_size):
    """Batches of captions (tf.string tensors) from any form `adapt` takes."""
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            if len(spec) < 2 or spec[1].dtype != tf.string:
                raise ValueError(
                    "adapt(data): a dataset of tuples must hold the captions second, as the "
                    f"(images, captions) batches of data.load(..., text=True); got {spec}."
                )
            data = data.map(lambda *parts: parts[1])
        elif getattr(spec, "dtype", None) != tf.string:
            raise ValueError(f"adapt(data): the dataset must yield captions (tf.string); got {spec}.")
        if data.element_spec.shape.rank == 0:
            data = data.batch(batch_size)
        yield from data
        return
    if isinstance(data, str):
        data = [data]
    captions = tf.convert_to_tensor(np.asarray(data, dtype=object).astype(str) if not
                                    isinstance(data, tf.Tensor) else data)
    if captions.dtype != tf.string:
        raise ValueError(f"adapt(data) needs strings; got dtype {captions.dtype.name}.")
    captions = tf.reshape(captions, [-1])
    for start in range(0, int(captions.shape[0]), batch_size):
        yield captions[start : start + batch_size]


# --------------------------------------------------------------------------------------------
# Encoder


@keras.saving.register_keras_serializable(package="keras_gen")
class TransformerEncoderBlock(ListedConfig, keras.layers.Layer):
    """Pre-norm Transformer encoder block: x + attention(norm(x)), then x + MLP(norm(x)); padded
    positions are masked out as keys."""

    def __init__(self, dim, num_heads=2, mlp_dim=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        init = _seeded(seed)
        self.dim = checks.positive_int("dim", dim)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        if self.dim % self.num_heads:
            raise ValueError(
                f"dim must divide by num_heads; got dim={dim}, num_heads={num_heads}."
            )
        self.mlp_dim = checks.positive_int("mlp_dim", 2 * self.dim if mlp_dim is None else mlp_dim)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        # Attention written out (not keras.layers.MultiHeadAttention, whose masked path turns
        # into NaN in LiteRT): projections, scaled dot products with padding keys pushed to
        # -1e9, softmax; a caption without words attends uniformly instead of dividing by zero.
        self.query = keras.layers.Dense(self.dim, kernel_initializer=init(), name="query")
        self.key = keras.layers.Dense(self.dim, kernel_initializer=init(), name="key")
        self.value = keras.layers.Dense(self.dim, kernel_initializer=init(), name="value")
        self.attention_out = keras.layers.Dense(self.dim, kernel_initializer=init(), name="attention_out")
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="mlp_norm")
        self.mlp_in = keras.layers.Dense(self.mlp_dim, activation="gelu", kernel_initializer=init(),
                                         name="mlp_in")
        self.mlp_out = keras.layers.Dense(self.dim, kernel_initializer=init(), name="mlp_out")

    def build(self, input_shape):
        self.attention_norm.build(input_shape)
        for dense in (self.query, self.key, self.value, self.attention_out):
            dense.build(input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, x, mask):
        x = x + self.attention_out(self._attend(self.attention_norm(x), mask))
        return x + self.mlp_out(self.mlp_in(self.mlp_norm(x)))

    def _attend(self, h, mask):
        ops = keras.ops
        length, head_dim = ops.shape(h)[1], self.dim // self.num_heads

        def heads(t):  # (batch, length, dim) -> (batch, heads, length, head_dim)
            return ops.transpose(ops.reshape(t, (-1, length, self.num_heads, head_dim)), (0, 2, 1, 3))

        q, k, v = heads(self.query(h)), heads(self.key(h)), heads(self.value(h))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * (head_dim**-0.5)
        # Every query may look at every word, never at padding: (batch, 1, 1, key). In float32:
        # 1e9 is inf in float16, and 0 * inf a NaN under mixed precision.
        scores = ops.cast(scores, "float32") + (ops.cast(mask, "float32")[:, None, None, :] - 1.0) * 1e9
        out = ops.matmul(ops.cast(ops.softmax(scores, axis=-1), v.dtype), v)
        return ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, length, self.dim))

    def compute_output_shape(self, input_shape):
        return input_shape

    config_args = ("dim", "num_heads", "mlp_dim", "seed")


@keras.saving.register_keras_serializable(package="keras_gen")
class TextEncoder(ListedConfig, keras.layers.Layer):
    """Token ids (batch, sequence_length) -> `(states, pooled)`: per-token states (batch,
    sequence_length, dim) for cross-attention, and their mean over the words (padding left out;
    zeros for a caption without words), (batch, dim), for a pooled conditioning such as FiLM.

    Token and position embeddings, then `num_layers` Transformer encoder blocks and a final layer
    norm. Every op converts to TFLite builtins.
    """

    def __init__(self, vocabulary_size, sequence_length, dim=64, num_layers=1, num_heads=2,
                 mlp_dim=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        # seed: equal seeds give equal weights (a model's networks are seeded by its seed).
        self.seed = seed
        init = _seeded(seed, "embedding")
        self.vocabulary_size = checks.positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = checks.positive_int("sequence_length", sequence_length)
        self.dim = checks.positive_int("dim", dim)
        self.num_layers = checks.positive_int("num_layers", num_layers)
        self.num_heads = checks.positive_int("num_heads", num_heads)
        self.mlp_dim = mlp_dim
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size, self.dim, embeddings_initializer=init(), name="token_embedding")
        self.position_embedding = keras.layers.Embedding(
            self.sequence_length, self.dim, embeddings_initializer=init(), name="position_embedding")
        self.blocks = [
            TransformerEncoderBlock(self.dim, self.num_heads, mlp_dim,
                                    seed=None if seed is None else seed + 10 * (i + 1),
                                    name=f"block_{i}")
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] not in (None, self.sequence_length):
            raise ValueError(
                f"TextEncoder takes token ids of shape (batch, {self.sequence_length}) (its "
                f"sequence_length); got shape {tuple(input_shape)}. Tokenize with the same "
                "sequence_length."
            )
        self.token_embedding.build(input_shape)
        self.position_embedding.build((self.sequence_length,))
        state_shape = tuple(input_shape) + (self.dim,)
        for block in self.blocks:
            block.build(state_shape)
        self.final_norm.build(state_shape)

    def call(self, token_ids):
        token_ids = keras.ops.cast(token_ids, "int32")
        mask = padding_mask(token_ids)
        positions = keras.ops.arange(self.sequence_length, dtype="int32")
        x = self.token_embedding(token_ids) + self.position_embedding(positions)[None]
        for block in self.blocks:
            x = block(x, mask)
        states = self.final_norm(x)
        weights = keras.ops.cast(mask, states.dtype)[..., None]
        count = keras.ops.maximum(keras.ops.sum(weights, axis=1), 1.0)
        pooled = keras.ops.sum(states * weights, axis=1) / count
        return states, pooled

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        return (batch, self.sequence_length, self.dim), (batch, self.dim)

    config_args = ("vocabulary_size", "sequence_length", "dim", "num_layers", "num_heads", "mlp_dim",
                   "seed")


def _seeded(seed, kind="dense"):
    """A new initialiser per call, seeded from `seed` (None: Keras' unseeded defaults), each
    with its own seed: Keras' seeded initialisers repeat their values for a repeated seed."""
    count = [0]

    def init():
        count[0] += 1
        s = None if seed is None else int(seed) * 1009 + count[0]
        if kind == "embedding":
            return keras.initializers.RandomUniform(-0.05, 0.05, seed=s)
        return keras.initializers.GlorotUniform(seed=s)

    return init


# --------------------------------------------------------------------------------------------
# The text mode of a family: one option, one mixin, shared by every text-conditioned family.

TEXT_OPTION = Option("text", "condition on captions (data loaded with text=True; the "
                     "vocabulary is adapted from the training captions)", bool)
# Read by `keras-gen sample` itself (not passed to generate as they are): the prompts.
PROMPT_OPTIONS = (
    Option("prompt", "a caption to generate from (text models): -n images of it (default 64)",
           str, constructor=False),
    Option("prompts", "a file of captions, one per line (text models): one image each, or -n "
           "each when -n is given", str, constructor=False, metavar="FILE"),
)
# Captions `adapt` keeps (the first distinct ones) for grids and exports that need prompts.
NUM_SAMPLE_PROMPTS = 16


def mismatched_captions(token_ids):
    """The batch's captions rolled by one over the *global* batch (row i gets row i - 1's
    caption): the wrong captions of a matching-aware discriminator (Reed et al. 2016). Drawn
    without noise, and the same pairs on 1 or N replicas (each replica gathers the others' ids
    and takes its slice of the rolled global batch)."""
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    if replicas == 1:
        return tf.roll(token_ids, 1, axis=0)
    everyone = ctx.all_gather(token_ids, axis=0)
    local = tf.shape(token_ids)[0]
    start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
    return tf.roll(everyone, 1, axis=0)[start : start + local]


def read_prompts(path):
    """The prompts of a file, one per line (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        prompts = [line.strip() for line in f if line.strip()]
    if not prompts:
        raise ValueError(f"the prompts file {path} holds no prompt; write one caption per line.")
    return prompts


class TextConditioned:
    """The text mode of a family (`Family(image_shape, text=True)`), mixed in before its base.

    The model owns a `TextTokenizer` (`model.tokenizer`, vocabulary learnt by `model.adapt(data)`
    and saved in the model's config) and builds `TextEncoder`s with `text_encoder(name)` for its
    networks. Data are `(images, captions)` batches (`keras_gen.data.load(..., text=True)`);
    `fit` tokenizes the captions in the input pipeline (string ops do not compile with XLA, and
    each replica then gets ids), and the step reads the token ids where a class-conditional
    model reads labels. `generate(prompts=[...], seed=0)` gives one image per prompt.

    The family's constructor calls `init_text(...)` before `keras.Model.__init__` (its networks
    need the sizes) and `make_tokenizer()` after it.
    """

    text = False
    # The model's config (keras_gen.configs): the vocabulary travels in the `.keras` file.
    config_args = ("text", "max_tokens", "sequence_length", "text_dim", "vocabulary",
                   "sample_prompts")

    def init_text(self, text, num_classes, max_tokens, sequence_length, text_dim, vocabulary,
                  sample_prompts):
        self.text = bool(text)
        if self.text and num_classes is not None:
            raise ValueError(
                f"text=True conditions on captions, and num_classes={num_classes} on class labels; "
                "a model takes one of them. Pass num_classes=None with text=True (a caption can "
                "name the class), or text=False."
            )
        self.max_tokens = checks.positive_int("max_tokens", max_tokens)
        self.sequence_length = checks.positive_int("sequence_length", sequence_length)
        self.text_dim = checks.positive_int("text_dim", text_dim)
        self._initial_vocabulary = list(vocabulary or [])
        self.sample_prompts = [str(p) for p in (sample_prompts or [])]

    def make_tokenizer(self):
        self.tokenizer = (
            TextTokenizer(self.max_tokens, self.sequence_length, self._initial_vocabulary,
                          name="tokenizer") if self.text else None
        )

    def text_encoder(self, name, stream):
        """A new `TextEncoder` for one of the model's networks, seeded from the model's seed
        and `stream` (each network its own)."""
        seed = None if self.seed is None else self.seed * 7 + 1000 * stream
        return TextEncoder(self.max_tokens, self.sequence_length, dim=self.text_dim, seed=seed,
                           name=name)

    # -- vocabulary

    @property
    def vocabulary(self):
        """The tokenizer's words (None for a model without text)."""
        return self.tokenizer.vocabulary if self.text else None

    def adapt(self, data, batch_size=256):
        """Learns the vocabulary from the captions of `data` (the dataset `fit` takes, or a list
        of strings) and keeps its first distinct captions as `sample_prompts` (sample grids and
        exports use them). Returns the model."""
        self._require_text("adapt")
        self.tokenizer.adapt(data, batch_size)
        prompts = []
        for captions in _caption_batches(data, batch_size):
            for c in np.asarray(captions).reshape(-1):
                c = c.decode() if isinstance(c, bytes) else str(c)
                if c not in prompts:
                    prompts.append(c)
            if len(prompts) >= NUM_SAMPLE_PROMPTS:
                break
        self.sample_prompts = prompts[:NUM_SAMPLE_PROMPTS]
        return self

    def _require_text(self, what):
        if not self.text:
            raise ValueError(
                f"{what} needs a text-conditioned model: {type(self).__name__} was built with "
                f"text=False. Build it with text=True and train it on captioned data "
                "(keras_gen.data.load(..., text=True))."
            )
        return self

    def empty_caption_ids(self, batch):
        """Token ids of the empty caption (all padding), (batch, sequence_length): the
        unconditional input, e.g. for caption dropout and classifier-free guidance."""
        return tf.fill([batch, self.sequence_length], tf.constant(PAD_ID, tf.int32))

    def example_conditions(self, batch):
        if not self.text:
            return super().example_conditions(batch)
        return tf.zeros((batch, self.sequence_length), tf.int32)

    # -- data

    def _unpack(self, data):
        if not self.text:
            return super()._unpack(data)
        images, captions = data[0], data[1]
        if captions.dtype == tf.string:
            captions = self.tokenizer(captions)
        return images, tf.cast(captions, tf.int32)

    def check_structure(self, images, captions=None, *rest):
        if self.text:
            if captions is None or captions.dtype not in (tf.string, tf.int32):
                raise ValueError(
                    f"{type(self).__name__} is text-conditioned (text=True) and trains on "
                    "(images, captions) batches, captions a tf.string vector; got "
                    f"{(images, captions) if captions is not None else images}. Load the data "
                    "with keras_gen.data.load(..., text=True) (a captioned source)."
                )
            if not self.tokenizer.vocabulary:
                raise ValueError(
                    f"{type(self).__name__}'s vocabulary is empty: call model.adapt(data) with "
                    "the training data before fit, as for Keras' preprocessing layers."
                )
        super().check_structure(images, captions, *rest)

    def checked_labels(self, x, y=None):
        """Captions become token ids in the input pipeline."""
        if not self.text or not isinstance(x, tf.data.Dataset):
            return super().checked_labels(x, y)
        spec = x.element_spec
        if isinstance(spec, tuple) and len(spec) > 1 and spec[1].dtype == tf.string:
            tokenizer = self.tokenizer
            x = x.map(lambda images, captions, *rest: (images, tokenizer(captions)),
                      num_parallel_calls=tf.data.AUTOTUNE)
        return x, y

    # -- generate

    def prompt_ids(self, prompts):
        """int32 token ids (len(prompts), sequence_length) of Python strings; unknown words
        warn by name. A prompt without words, or with more than `sequence_length` of them, is
        an error: the first would ask for an image of nothing, the second would lose its last
        words without a sign (training cuts long captions; a prompt is the user's own)."""
        self._require_text("prompts")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        bad = [(i, type(p).__name__) for i, p in enumerate(prompts) if not isinstance(p, str)]
        if bad:
            raise ValueError(
                f"prompts must be strings, one caption each; prompts[{bad[0][0]}] is a "
                f"{bad[0][1]}. Pass e.g. prompts=['a red sneaker', 'a blue bag']."
            )
        example = self.sample_prompts[0] if self.sample_prompts else "a red sneaker"
        for i, words in enumerate(self.tokenizer.split(prompts).to_list() if prompts else []):
            if not words:
                raise ValueError(
                    f"prompts[{i}] = {prompts[i]!r} has no words (the tokenizer lower-cases, "
                    "removes ASCII punctuation and splits on whitespace). Give each prompt at "
                    f"least one word, e.g. {example!r}."
                )
            if len(words) > self.sequence_length:
                raise ValueError(
                    f"prompts[{i}] = {prompts[i]!r} has {len(words)} words; this model reads at "
                    f"most sequence_length={self.sequence_length}, and the words after the "
                    f"{self.sequence_length}th would be dropped. Shorten the prompt (the training "
                    f"captions look like {example!r}), or train a model with a larger "
                    "sequence_length."
                )
        return self.tokenizer.encode(prompts)

    def generate(self, n=None, seed=None, labels=None, prompts=None, **kwargs):
        """Text models: one image per prompt (`prompts`, a list of strings; without them, `n`
        images cycling through `sample_prompts`, the captions `adapt` kept). Other models:
        the family's own `generate(n, seed, labels)`."""
        if not self.text:
            if prompts is not None:
                self._require_text("generate(prompts=...)")
            return super().generate(n, seed=seed, labels=labels, **kwargs)
        if labels is not None:
            raise ValueError(
                f"{type(self).__name__} is text-conditioned: it takes prompts=[...], not labels. "
                "Name the class in the prompt, e.g. prompts=['a red sneaker']."
            )
        if prompts is None:
            if not self.sample_prompts:
                raise ValueError(
                    "generate on a text model needs prompts=[...] (one image each); it has no "
                    "sample_prompts yet (model.adapt(data) keeps some)."
                )
            count = checks.count(n if n is not None else len(self.sample_prompts))
            prompts = [self.sample_prompts[i % len(self.sample_prompts)] for i in range(count)]
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if n is not None and checks.count(n) != len(prompts):
            raise ValueError(
                f"generate gives one image per prompt: n={n}, but {len(prompts)} prompts were "
                "given. Leave n out, or repeat the prompts."
            )
        return super().generate(len(prompts), seed=seed, conditions=self.prompt_ids(prompts),
                                 **kwargs)

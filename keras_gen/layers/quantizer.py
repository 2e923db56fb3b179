"""`VectorQuantizer`: the discrete bottleneck of a VQ-VAE (van den Oord et al. 2017).

Each D-dimensional vector of the encoder's output grid is replaced by its nearest code of a
learned codebook of K vectors. The gradient skips the non-differentiable lookup (the
straight-through estimator: the decoder's gradient reaches the encoder unchanged); the codebook
learns either by its own loss ||sg[z_e] - e||^2 or, the default, as an exponential moving
average of the encoder outputs assigned to each code (the paper's appendix A.1, with Sonnet's
Laplace smoothing), and codes that no encoder output chose for `dead_code_steps` steps are
re-seeded from encoder outputs of the batch.

Under `tf.distribute` every statistic (code counts, EMA sums, the restart candidates) is taken
over the GLOBAL batch by summing per-replica values across replicas, so 1 and 2 replicas given
the same global batch compute the same codebook.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_gen import checks
from keras_gen.configs import ListedConfig

CODEBOOK_UPDATES = ("ema", "loss")


def _num_replicas():
    ctx = tf.distribute.get_replica_context()
    return ctx.num_replicas_in_sync if ctx is not None else 1


def sum_over_replicas(x):
    """`x` summed over the replicas in sync (itself on one replica)."""
    if _num_replicas() == 1:
        return x
    return tf.distribute.get_replica_context().all_reduce("sum", x)


def gather_replicas(x):
    """(replicas, *x.shape): every replica's `x`, in replica order, on every replica. An
    all-gather written as a sum of one-hot rows, so it needs only all-reduce."""
    replicas = _num_replicas()
    if replicas == 1:
        return x[None]
    ctx = tf.distribute.get_replica_context()
    row = tf.one_hot(ctx.replica_id_in_sync_group, replicas, dtype=x.dtype)
    return ctx.all_reduce("sum", tf.reshape(row, [replicas] + [1] * len(x.shape)) * x[None])


def straight_through(inputs, quantized):
    """`quantized` in the forward pass, the identity's gradient to `inputs` in the backward
    pass: z_e + sg[e - z_e]."""
    return inputs + tf.stop_gradient(quantized - inputs)


@keras.saving.register_keras_serializable(package="keras_gen")
class VectorQuantizer(ListedConfig, keras.layers.Layer):
    """Nearest-code quantisation of the last axis, with the straight-through gradient.

    `layer(z_e)` returns the quantised vectors (the codes' embeddings), differentiable in
    `z_e` by the straight-through estimator. The model calls the parts itself: `nearest` (code
    indices), `lookup` (their vectors), `vq_losses` (codebook and commitment terms),
    `code_counts` and `update` (EMA and dead-code restarts, after the gradient step).

    Args:
      num_embeddings: K, the number of codes.
      embedding_dim: D, the size of each code vector (the encoder's output channels).
      codebook_update: "ema" (the codebook is a moving average of the encoder outputs assigned
        to each code; no gradient) or "loss" (a trainable codebook learned by ||sg[z_e] - e||^2).
      decay: the EMA's decay gamma.
      epsilon: Laplace smoothing of the EMA's cluster sizes (no division by zero).
      dead_code_steps: a code that no encoder output of the global batch chose for this many
        consecutive training steps is re-seeded from an encoder output of the batch; None: never.
        The count starts at dead_code_steps - 1, so the first batch also seeds the codes it
        leaves unused.
      embeddings_initializer: initialiser of the (K, D) codebook.
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        codebook_update="ema",
        decay=0.99,
        epsilon=1e-5,
        dead_code_steps=10,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_embeddings = checks.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = checks.positive_int("embedding_dim", embedding_dim)
        self.codebook_update = checks.choice("codebook_update", codebook_update, CODEBOOK_UPDATES)
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be a number in [0, 1), e.g. 0.99; got {decay!r}.")
        self.decay = float(decay)
        self.epsilon = checks.non_negative_number("epsilon", epsilon)
        if dead_code_steps is not None:
            dead_code_steps = checks.positive_int("dead_code_steps", dead_code_steps)
        self.dead_code_steps = dead_code_steps
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"VectorQuantizer(embedding_dim={self.embedding_dim}) takes vectors of size "
                f"{self.embedding_dim} on the last axis; got inputs of shape {tuple(input_shape)}."
            )
        k, d = self.num_embeddings, self.embedding_dim
        self.embeddings = self.add_weight(
            shape=(k, d), initializer=self.embeddings_initializer, name="embeddings",
            trainable=self.codebook_update == "loss", dtype="float32",
        )
        if self.codebook_update == "ema":
            # Each code starts as the mean of one point, itself: an unused code stays where it
            # is (until a restart moves it) instead of collapsing to the origin.
            self.ema_cluster_size = self.add_weight(
                shape=(k,), initializer="ones", name="ema_cluster_size", trainable=False,
                dtype="float32",
            )
            self.ema_embedding_sum = self.add_weight(
                shape=(k, d), initializer="zeros", name="ema_embedding_sum", trainable=False,
                dtype="float32",
            )
            self.ema_embedding_sum.assign(self.embeddings)
        # Codes start as if unused for dead_code_steps - 1 steps: those the first training batch
        # leaves unused are seeded from its encoder outputs at once (a data-dependent start;
        # random codes far from the encoder's outputs would otherwise sit unused for
        # dead_code_steps steps while a few codes take everything).
        self.steps_unused = self.add_weight(
            shape=(k,), initializer=keras.initializers.Constant((self.dead_code_steps or 1) - 1),
            name="steps_unused", trainable=False, dtype="float32",
        )

    # -- lookup -------------------------------------------------------------------------------

    def distances(self, flat):
        """Squared distances (N, K) of vectors (N, D) to every code, as ||x||^2 - 2 x.e +
        ||e||^2 (one matrix product; no (N, K, D) tensor)."""
        flat = tf.cast(flat, tf.float32)
        codebook = tf.convert_to_tensor(self.embeddings)
        return (
            tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)
            - 2.0 * tf.matmul(flat, codebook, transpose_b=True)
            + tf.reduce_sum(tf.square(codebook), axis=1)[None, :]
        )

    def nearest(self, inputs):
        """int32 indices (...) of the nearest code of each vector of `inputs` (..., D)."""
        inputs = tf.cast(inputs, tf.float32)
        flat = tf.reshape(inputs, [-1, self.embedding_dim])
        codes = tf.argmin(self.distances(flat), axis=1, output_type=tf.int32)
        return tf.reshape(codes, tf.shape(inputs)[:-1])

    def lookup(self, codes):
        """The code vectors (..., D) of int indices (...)."""
        return tf.gather(tf.convert_to_tensor(self.embeddings), tf.cast(codes, tf.int32))

    def call(self, inputs):
        inputs = tf.cast(inputs, tf.float32)
        return straight_through(inputs, self.lookup(self.nearest(inputs)))

    def compute_output_shape(self, input_shape):
        return input_shape

    # -- losses and statistics ----------------------------------------------------------------

    @staticmethod
    def vq_losses(inputs, quantized):
        """(codebook, commitment) per example, each summed over the example's vectors:
        codebook ||sg[z_e] - e||^2 moves the codes (used with codebook_update="loss"),
        commitment ||z_e - sg[e]||^2 keeps the encoder near its codes (weighted by beta)."""
        inputs = tf.cast(inputs, tf.float32)
        quantized = tf.cast(quantized, tf.float32)

        def per_example(x):
            return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)

        codebook = per_example(tf.square(tf.stop_gradient(inputs) - quantized))
        commitment = per_example(tf.square(inputs - tf.stop_gradient(quantized)))
        return codebook, commitment

    def code_counts(self, codes):
        """How often each code was chosen in the global batch: float32 (K,)."""
        flat = tf.reshape(tf.cast(codes, tf.int32), [-1])
        counts = tf.math.unsorted_segment_sum(
            tf.ones_like(flat, tf.float32), flat, self.num_embeddings
        )
        return sum_over_replicas(counts)

    @staticmethod
    def perplexity(counts):
        """exp(entropy) of the codes' frequencies: K when every code is used equally, 1 when one
        code takes everything."""
        p = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
        return tf.exp(-tf.reduce_sum(tf.math.xlogy(p, p)))

    # -- updates (training steps only) --------------------------------------------------------

    def update(self, inputs, codes, counts, restart_scores=None):
        """After a training step: the EMA codebook update (codebook_update="ema") and the
        dead-code restarts. `inputs` (..., D) are this replica's encoder outputs, `codes` their
        codes, `counts` the global `code_counts(codes)`; `restart_scores` (N, K) uniform noise,
        one score per local vector and code (replica-exact: drawn for the global batch and
        sliced), required with `dead_code_steps`: each restarted code takes the vector with its
        highest score in the global batch."""
        flat = tf.stop_gradient(tf.reshape(tf.cast(inputs, tf.float32), [-1, self.embedding_dim]))
        codes = tf.reshape(tf.cast(codes, tf.int32), [-1])
        if self.codebook_update == "ema":
            self._ema_update(flat, codes, counts)
        if self.dead_code_steps is not None:
            if restart_scores is None:
                raise ValueError("update() needs restart_scores when dead_code_steps is set.")
            self._restart_dead_codes(flat, counts, restart_scores)

    def _ema_update(self, flat, codes, counts):
        sums = sum_over_replicas(tf.math.unsorted_segment_sum(flat, codes, self.num_embeddings))
        decay = self.decay
        cluster_size = decay * self.ema_cluster_size + (1.0 - decay) * counts
        embedding_sum = decay * self.ema_embedding_sum + (1.0 - decay) * sums
        self.ema_cluster_size.assign(cluster_size)
        self.ema_embedding_sum.assign(embedding_sum)
        self.embeddings.assign(embedding_sum / self.smoothed_cluster_size(cluster_size)[:, None])

    def smoothed_cluster_size(self, cluster_size):
        """Laplace smoothing: (N_k + eps) / (n + K eps) * n with n = sum N_k, so no code's size is
        zero and the sizes still sum to n."""
        n = tf.reduce_sum(cluster_size)
        return (cluster_size + self.epsilon) / (n + self.num_embeddings * self.epsilon) * n

    def _restart_dead_codes(self, flat, counts, scores):
        steps_unused = tf.where(counts > 0, 0.0, self.steps_unused + 1.0)
        dead = steps_unused >= float(self.dead_code_steps)
        # This replica's best candidate for each code, then the best over all replicas.
        scores = tf.cast(scores, tf.float32)
        local_best = tf.argmax(scores, axis=0, output_type=tf.int32)  # (K,)
        best_score = gather_replicas(tf.reduce_max(scores, axis=0))  # (R, K)
        candidates = gather_replicas(tf.gather(flat, local_best))  # (R, K, D)
        winner = tf.argmax(best_score, axis=0, output_type=tf.int32)  # (K,)
        chosen = tf.gather(
            tf.transpose(candidates, [1, 0, 2]), winner[:, None], batch_dims=1
        )[:, 0]  # (K, D)
        self.embeddings.assign(tf.where(dead[:, None], chosen, self.embeddings))
        if self.codebook_update == "ema":  # a restarted code is the mean of one point, as at start
            self.ema_cluster_size.assign(tf.where(dead, 1.0, self.ema_cluster_size))
            self.ema_embedding_sum.assign(tf.where(dead[:, None], chosen, self.ema_embedding_sum))
        self.steps_unused.assign(tf.where(dead, 0.0, steps_unused))

    # -- serialisation ------------------------------------------------------------------------

    config_args = ("num_embeddings", "embedding_dim", "codebook_update", "decay", "epsilon",
                   "dead_code_steps", "embeddings_initializer")

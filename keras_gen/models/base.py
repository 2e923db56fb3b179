"""What every keras-gen model shares: the seed it owns, replica-exact noise, the `generate`
contract, and early checks of what `fit` is given."""

from __future__ import annotations

import contextlib
import difflib
import json
import warnings
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from keras_gen import checks, progress
from keras_gen.configs import listed_arguments
from keras_gen.networks import policy_scope
from keras_gen.version import __version__


def num_replicas():
    """Replicas in sync in the current replica context (1 outside tf.distribute)."""
    ctx = tf.distribute.get_replica_context()
    return ctx.num_replicas_in_sync if ctx is not None else 1


def label_error(num_classes):
    return (
        f"a label in the data is outside 0..{num_classes - 1} (the model has "
        f"num_classes={num_classes}); build the model with the data's number of classes "
        "(keras_gen.data.info(name).num_classes)."
    )


def labels_checked_in_pipeline(dataset, num_classes):
    """`dataset` of (images, labels, ...) batches with an assertion on every batch's labels."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        return dataset

    def check(images, labels, *rest):
        labels = tf.cast(labels, tf.int32)
        in_range = tf.reduce_all((labels >= 0) & (labels < num_classes))
        message = label_error(num_classes) + " Labels in the batch range over:"
        with tf.control_dependencies([
            tf.debugging.Assert(in_range, [message, tf.reduce_min(labels), tf.reduce_max(labels)])
        ]):
            return (images, tf.identity(labels), *rest)

    return dataset.map(check)


def data_spec(x, y=None):
    """The structure of training data: a tuple of TensorSpecs (images, then labels or targets;
    None where absent), or None for data other than a tf.data.Dataset or NumPy arrays."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        return tuple(spec) if isinstance(spec, (tuple, list)) else (spec, None)
    if isinstance(x, np.ndarray):
        second = None if y is None else tf.TensorSpec(np.shape(y), tf.as_dtype(np.asarray(y).dtype))
        return tf.TensorSpec(x.shape, tf.as_dtype(x.dtype)), second
    return None


def first_batch(x, y=None):
    """The first batch of a dataset (the arrays themselves) as a tuple of NumPy arrays, images
    first; None for an empty dataset or other kinds of data."""
    if isinstance(x, tf.data.Dataset):
        batch = next(iter(x.take(1)), None)
        if batch is None:
            return None
        batch = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        return tuple(keras.ops.convert_to_numpy(part) for part in batch)
    if isinstance(x, np.ndarray):
        return (x,) if y is None else (x, np.asarray(y))
    return None


# -- presets (KerasHub's layout: config.json, model.weights.h5, metadata.json) ------------------

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
PRESET_FILES = ("config.json", "model.weights.h5", "metadata.json")


def shipped_presets():
    """{name: metadata} of every preset shipped in keras_gen/presets/, sorted by name; each
    metadata has "class_name" (the model class) besides what the preset's maker recorded."""
    found = {}
    if PRESETS_DIR.is_dir():
        for folder in sorted(PRESETS_DIR.iterdir()):
            if (folder / "metadata.json").is_file() and (folder / "config.json").is_file():
                found[folder.name] = json.loads((folder / "metadata.json").read_text())
    return found


def preset_folder(name_or_dir):
    """The folder of a preset: a shipped name, or a directory holding a preset's files. An
    unknown name fails with the shipped names, the nearest first."""
    path = Path(str(name_or_dir)).expanduser()
    if path.is_dir():
        missing = [f for f in PRESET_FILES if not (path / f).is_file()]
        if missing:
            raise ValueError(
                f"{path} is not a keras-gen preset: it lacks {', '.join(missing)}. A preset folder "
                f"holds {', '.join(PRESET_FILES)} (written by model.save_to_preset(path))."
            )
        return path
    names = list(shipped_presets())
    if str(name_or_dir) in names:
        return PRESETS_DIR / str(name_or_dir)
    nearest = difflib.get_close_matches(str(name_or_dir), names, n=max(1, len(names)), cutoff=0.0)
    raise ValueError(
        f"unknown preset {str(name_or_dir)!r}: it is neither a shipped preset nor a preset folder. "
        f"Shipped presets, nearest first: {', '.join(nearest) or '(none)'}. "
        "keras_gen.models.presets() lists them with their metadata."
    )


def preset_class(name_or_dir):
    """The registered model class a preset's config.json names (read without building it)."""
    config = json.loads((preset_folder(name_or_dir) / "config.json").read_text())
    cls = keras.saving.get_registered_object(config.get("registered_name") or "")
    if cls is None:
        raise ValueError(
            f"preset {str(name_or_dir)!r} holds a {config.get('class_name')}, which keras-gen "
            f"{__version__} does not have. Use the keras-gen version that saved it "
            f"(metadata.json: {config.get('config', {}).get('keras_gen_version')})."
        )
    return cls


def load_preset(name_or_dir, cls=None):
    """The model of a preset, built from its config.json and given its weights; `cls` (the class
    `from_preset` was called on) must be the preset's class or a base of it."""
    folder = preset_folder(name_or_dir)
    preset_cls = preset_class(folder)
    if cls is not None and not issubclass(preset_cls, cls):
        raise ValueError(
            f"preset {str(name_or_dir)!r} is a {preset_cls.__name__} preset, not a {cls.__name__} "
            f"one: load it with keras_gen.models.{preset_cls.__name__}.from_preset"
            f"({str(name_or_dir)!r}). {cls.__name__}'s presets: "
            f"{', '.join(cls.presets) or '(none)'}."
        )
    config = json.loads((folder / "config.json").read_text())
    model = keras.saving.deserialize_keras_object(config)
    # keras-gen models build their networks in __init__; a model whose build waits for data
    # (none today) would need its build_config here before the weights can load.
    with warnings.catch_warnings():
        # A preset leaves optimiser states out on purpose (fine-tuning starts a fresh optimiser).
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(folder / "model.weights.h5"))
    return model


class _PresetsOfClass:
    """`Family.presets`: {name: metadata} of the shipped presets of that class or a subclass,
    read at access (as KerasHub's class-level `presets`)."""

    def __get__(self, obj, cls):
        return {
            name: metadata for name, metadata in shipped_presets().items()
            if issubclass(keras.saving.get_registered_object(metadata.get("registered_name", ""))
                          or type(None), cls)
        }


def copy_weights_file(source, target, skip=(), float16=False, links=None):
    """Copies a `.weights.h5` file without its top-level groups `skip` (a compiled model's
    optimiser states: a preset ships the model, and fine-tuning starts a fresh optimiser) and
    without the optimiser states of nested models, with
    float32 arrays stored as float16 if asked (half the size; Keras casts them back to the
    variables' dtype on load). HDF5 never shrinks a file in place, hence the copy.

    links: {group: other group}: `group` is stored as an HDF5 hard link to `other` (its values
    once, read back as `other`'s), where the two hold arrays of the same names and shapes."""
    import h5py

    def layout(group):
        found = {}
        group.visititems(lambda name, item: found.update({name: item.shape})
                         if isinstance(item, h5py.Dataset) else None)
        return found

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        links = {key: other for key, other in (links or {}).items()
                 if key in src and other in src and layout(src[key]) == layout(src[other])}
        skip = tuple(skip) + tuple(links)
        for key, value in src.attrs.items():
            dst.attrs[key] = value

        def copy(name, item):
            parts = name.split("/")
            # A nested model's optimiser (the VQ-VAE's prior's) is left out too.
            if parts[0] in skip or "optimizer" in parts[1:]:
                return
            if isinstance(item, h5py.Group):
                group = dst.require_group(name)
                for key, value in item.attrs.items():
                    group.attrs[key] = value
                return
            values = item[()]
            if float16 and item.dtype == np.float32:
                values = values.astype(np.float16)
            dst.create_dataset(name, data=values)

        src.visititems(copy)
        for key, other in links.items():
            dst[key] = dst[other]


def _float32_config(value):
    """A Keras config with every mixed dtype policy in it (the model's, its networks', their
    layers') replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
            name = value["config"].get("name", "")
            if name.startswith("mixed_"):
                return {**value, "config": {**value["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float32_config(v) for v in value]
    return value


def float32_copy(model):
    """`model` itself when it computes in float32; else (a model trained under "mixed_bfloat16"
    or "mixed_float16", whose variables are float32 already) the same model rebuilt to compute in
    float32, with the same weights. Export uses it: LiteRT's builtin ops take no bfloat16, and a
    float32 file is what phones run."""
    if model.dtype_policy.compute_dtype == "float32" and all(
            layer.dtype_policy.compute_dtype == "float32"
            for layer in model._flatten_layers(include_self=False)):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    with policy_scope("float32"):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


class GenerativeModel(keras.Model):
    """Base class of the families.

    A conditional model (`num_classes`) may know its classes' names (`class_names`, from
    `keras_gen.data.info(source).class_names`; saved with the model), so that `generate` takes
    labels by name.

    Noise inside a training step comes from a stateless generator keyed by
    (model seed, step, purpose). It is drawn for the *global* batch and each replica takes its
    own slice, so replicas get different noise and 1, 2 or 4 replicas given the same global batch
    compute the same update.
    """

    def __init__(self, image_shape, num_classes=None, seed=None, class_names=None, **kwargs):
        # Written by get_config so a loader can tell which version saved a model; not an option.
        kwargs.pop("keras_gen_version", None)
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if num_classes is not None:
            num_classes = checks.positive_int("num_classes", num_classes)
        self.num_classes = num_classes
        self.class_names = class_names
        self.seed = checks.seed_or_fresh(seed)

    @property
    def class_names(self):
        """The names of the classes a conditional model was trained with (label index -> name,
        from `keras_gen.data.info(source).class_names`), or None; saved in the `.keras` file, so
        `generate(labels=["Sneaker", "Bag"])` works after loading. Set it from Python with
        `model.class_names = info.class_names` (`keras-gen train` does)."""
        return self._class_names

    @class_names.setter
    def class_names(self, names):
        self._class_names = checks.class_names(names, self.num_classes)

    def label_indices(self, labels, n):
        """`checks.labels` with this model's classes: n int32 labels from indices and/or class
        names, or None for an unconditional model."""
        return checks.labels(labels, n, self.num_classes, self.class_names)

    def policy_scope(self):
        """Builds sub-layers under the model's own dtype policy (not the global one), so a
        model loaded from a mixed-precision `.keras` file is mixed-precision throughout."""
        return policy_scope(self.dtype_policy)

    # The training batch the family's defaults were measured with; `keras-gen train` loads
    # batches of this size unless --batch-size says otherwise.
    default_batch_size = 64

    @property
    def batches_per_step(self):
        """Batches of the data one train_step takes (a GAN's discriminator steps each take
        their own): the command loads batches this many times its --batch-size."""
        return 1

    @property
    def num_dims(self):
        """Values per image, H * W * C: the denominator of bits per dimension."""
        return int(np.prod(self.image_shape))

    def example_conditions(self, batch):
        """What the networks take besides noise or images for `batch` examples, to check them at
        construction: int32 labels (batch,) for a conditional model, else None (a text model:
        token ids)."""
        return None if self.num_classes is None else tf.zeros((batch,), tf.int32)

    @property
    def data_range(self):
        """The `image_range` of `keras_gen.data.load` that `fit` takes ("tanh", "unit",
        "binary" or "levels")."""
        raise NotImplementedError
    # -- noise --------------------------------------------------------------------------------

    def step_noise(self, step, purpose, local_batch, event_shape, distribution="normal"):
        """Noise of shape (local_batch, *event_shape) for this replica's slice of the global
        batch. `step` is an int64 scalar tensor that counts training steps; `purpose` an int
        that separates the draws of one step (discriminator steps, generator step, ...)."""
        ctx = tf.distribute.get_replica_context()
        num_replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        replica_id = ctx.replica_id_in_sync_group if ctx is not None else 0
        seed = tf.stack(
            [tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64) * 64 + purpose]
        )
        global_shape = tf.concat(
            [[local_batch * num_replicas], tf.constant(event_shape, tf.int32)], axis=0
        )
        if distribution == "normal":
            noise = tf.random.stateless_normal(global_shape, seed=seed)
        else:
            noise = tf.random.stateless_uniform(global_shape, seed=seed)
        start = tf.cast(replica_id, tf.int32) * local_batch
        return noise[start : start + local_batch]

    def loss_scaled(self, optimizer):
        """Wraps `optimizer` in a LossScaleOptimizer under the mixed_float16 policy (float16
        gradients underflow without it), as Keras does for a model's own `optimizer`."""
        if self.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    @staticmethod
    def apply_gradients(optimizer, grads, variables):
        """`optimizer.apply_gradients` with embedding gradients made dense: sparse
        (IndexedSlices) gradients of different sizes on different replicas break the
        cross-replica all-gather under MirroredStrategy, and the tables here are small."""
        grads = [
            tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads
        ]
        optimizer.apply_gradients(zip(grads, variables))

    @staticmethod
    def global_batch_size(local_batch):
        return tf.cast(local_batch * num_replicas(), tf.float32)

    # -- data checks --------------------------------------------------------------------------

    def _unpack(self, data):
        """Splits a batch into (images, labels); labels are None for unconditional models.
        Labels are checked against num_classes outside the step (`checked_labels`, by `fit` and
        `evaluate`): inside an XLA-compiled step an out-of-range label would index an embedding
        silently, since XLA has no Assert op."""
        if isinstance(data, (tuple, list)):
            images = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            images, labels = data, None
        if self.num_classes is None:
            return images, None
        return images, tf.cast(labels, tf.int32)

    def check_data(self, x, y=None):
        """The one check of data entering training (`fit`, its validation data, `evaluate`,
        `keras_gen.training.fit` and the families' own readers): fails early, with a readable
        message, on data this model cannot train on. The structure first (`check_structure`:
        shapes, labels present), then the values of the first batch (`check_batch`: the range
        the family works in). Labels are checked on every batch in the input pipeline
        (`checked_labels`). Families override the two hooks, never this."""
        spec = data_spec(x, y)
        if spec is None:
            return
        self.check_structure(*spec)
        batch = first_batch(x, y)
        if batch is not None:
            self.check_batch(*batch)

    def check_batch(self, images, *rest):
        """Checks the values of one batch (NumPy: images, then labels or targets)."""

    def check_structure(self, images, labels=None, *rest):
        """Checks the TensorSpecs of the data: images of the model's shape, labels when the
        model is conditional."""
        shape = tuple(images.shape[1:])
        if len(shape) != 3 or any(
            d is not None and d != e for d, e in zip(shape, self.image_shape)
        ):
            raise ValueError(
                f"{type(self).__name__} expects images of shape (batch, "
                f"{', '.join(map(str, self.image_shape))}); the data gives (batch, "
                f"{', '.join(map(str, shape))}). Build the model for this data "
                f"(image_shape={tuple(d for d in shape)}) or load data of the model's size."
            )
        if self.num_classes is not None and labels is None:
            raise ValueError(
                f"{type(self).__name__} is conditional (num_classes={self.num_classes}) and "
                "needs (images, labels) batches: load the data with with_labels=True."
            )

    def default_optimizer(self, argument="optimizer"):
        """A new instance of the optimiser `compile()` uses for its argument `argument` when
        none is given (a GAN has two: "d_optimizer", "g_optimizer"). Default: Adam(1e-3)."""
        return keras.optimizers.Adam(1e-3)

    def compile(self, optimizer=None, jit_compile="auto", deterministic=False, **kwargs):
        """Keras' compile with the family's defaults: `default_optimizer()` when no optimiser
        is given, and Keras' own `jit_compile="auto"` (XLA on GPUs/TPUs when every layer supports
        it, off on CPU-only machines, under tf.distribute and with op determinism).
        `deterministic=True` (needed on GPUs for exact repeatability) changes process-wide
        state, for every model and every TensorFlow op of the process, not just this model: it
        turns on op determinism (`tf.config.experimental.enable_op_determinism`, which also
        turns XLA's "auto" off and makes some ops slower) and re-seeds Keras', NumPy's and
        Python's global random generators with the model's seed (`keras.utils.set_random_seed`).
        Neither is undone when training ends. The optimiser
        is built at once under the model's strategy (so `fit` needs no symbolic build; see
        `_maybe_symbolic_build`)."""
        if optimizer is None:
            optimizer = self.default_optimizer()
        if deterministic:
            keras.utils.set_random_seed(self.seed)
            tf.config.experimental.enable_op_determinism()
        # Measured override, kept here should Keras' "auto" ever turn XLA on for CPUs: XLA for
        # these families' train steps on a CPU measured slower on a 2-core CPU with TensorFlow
        # 2.21's oneDNN kernels (benchmarks/train_throughput.py, RESULTS.md: 0.39x DCGAN, 0.49x
        # ConvVAE, 0.71x PixelCNN of the plain step; the VQ-VAE and Pix2Pix steps slower too),
        # which is what "auto" does on CPU-only machines today, so "auto" passes through:
        #     if jit_compile == "auto" and not tf.config.list_logical_devices("GPU"):
        #         jit_compile = False
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.optimized_variables())

    def get_compile_config(self):
        # The families' compile() takes optimisers only, so that is all a saved file needs to
        # restore (with their state) on load.
        if not getattr(self, "compiled", False):
            return None
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))

    def optimized_variables(self):
        """The variables Keras' own `optimizer` updates (a GAN's: the generator's only)."""
        return self.trainable_variables

    def size_named_networks(self, image_shape, filters):
        """Set-up of a class whose base builds its networks (DCGAN, ConvVAE), before the base's
        __init__ calls its build_networks: the square image shape and the base width they are
        sized from, checked."""
        self.network_image_shape = checks.square_image_shape(image_shape, type(self).__name__)
        self.filters = checks.positive_int("filters", filters)

    def probe_network(self, network, inputs, cannot, inputs_name):
        """`network` called on `inputs`, a batch of 2 (with labels 0, `[inputs, labels]`, for a
        conditional model): a user's network that cannot take them fails here, with a message
        that starts with `cannot`, instead of at the first training step."""
        labels = self.example_conditions(2)
        try:
            return network(inputs if labels is None else [inputs, labels], training=False)
        except Exception as e:
            raise ValueError(
                cannot + (f" with labels [{inputs_name}, labels]" if labels is not None else "")
                + f": {str(e)[:500]}"
            ) from e

    def add_trackers(self, **metric_names):
        """One `keras.metrics.Mean` per keyword: attribute `<keyword>_tracker`, logged under the
        keyword's value (a family's `metrics` property lists those it reports)."""
        for key, name in metric_names.items():
            setattr(self, f"{key}_tracker", keras.metrics.Mean(name=name))

    def metrics_logs(self):
        """What a train_step / test_step returns: every tracker's result.

        Under MultiWorkerMirroredStrategy, Keras reduces step outputs with a mean over axis 0,
        which fails on scalars (keras-team/keras#20585), so there each value gets a leading
        axis of 1. Epoch logs are read from the trackers themselves either way."""
        logs = {m.name: m.result() for m in self.metrics}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' version reduces a distributed batch with strategy.reduce, which fails under
        # MultiWorkerMirroredStrategy (keras-team/keras#20585). keras-gen models are built in
        # __init__ and their optimisers in compile, so there is nothing left to build.
        if self.built and getattr(self, "optimizer", None) is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def fit(self, x=None, y=None, *args, check_first_batch=True, **kwargs):
        """Keras' `fit` after `check_data` on the data and the validation data, with the labels
        of a conditional model checked in the input pipeline. Reading the first batch starts an
        iteration of the dataset, and one that reshuffles each iteration then trains on its
        second order; `keras_gen.training.fit` therefore checks a fresh copy of each epoch's
        data and passes `check_first_batch=False`, so a resumed run sees the same orders."""
        if check_first_batch:
            self.check_data(x, y)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)):
            self.check_data(*validation[:2])
        elif validation is not None:
            self.check_data(validation)
        x, y = self.checked_labels(x, y)
        if isinstance(x, tf.data.Dataset):
            # keras_gen.data.load shuffles already; Keras would warn that it ignores shuffle.
            kwargs.setdefault("shuffle", False)
        validation = kwargs.get("validation_data")
        if isinstance(validation, tf.data.Dataset):
            kwargs["validation_data"] = self.checked_labels(validation)[0]
        with self._readable_data_errors():
            return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_data(x, y)
        x, y = self.checked_labels(x, y)
        with self._readable_data_errors():
            return super().evaluate(x, y, *args, **kwargs)

    def checked_labels(self, x, y=None):
        """(x, y) with the labels of a conditional model checked against num_classes: NumPy
        labels at once, a dataset's in its pipeline (outside any compiled step, so the check
        holds under XLA too)."""
        if not self.num_classes:
            return x, y
        if isinstance(x, tf.data.Dataset):
            return labels_checked_in_pipeline(x, self.num_classes), y
        if y is not None and not isinstance(y, tf.data.Dataset):
            labels = np.asarray(keras.ops.convert_to_numpy(y))
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(label_error(self.num_classes) + (
                    f" Labels in the data: {int(labels.min())}..{int(labels.max())}."))
        return x, y

    @contextlib.contextmanager
    def _readable_data_errors(self):
        """A label or image error raised inside the input pipeline, as a ValueError that says
        what to do instead of a TensorFlow traceback."""
        from keras_gen.training import explain_op_error

        try:
            yield
        except tf.errors.InvalidArgumentError as e:
            explained = explain_op_error(e, self)
            if explained is None:
                raise
            raise explained from None

    # -- generate -----------------------------------------------------------------------------

    # -- presets ------------------------------------------------------------------------------

    presets = _PresetsOfClass()

    # {network: other network} a preset stores once: `network` loads `other`'s weights (a GAN's
    # generator, its EMA generator's). A preset holds what samples and what fine-tuning needs.
    preset_weight_links = {}

    @classmethod
    def from_preset(cls, name_or_dir):
        """A trained model from a preset: a name shipped with keras-gen (`cls.presets` lists
        them; `keras_gen.models.presets()` lists every family's) or a folder written by
        `save_to_preset`. Works offline: shipped presets are package data."""
        return load_preset(name_or_dir, cls)

    def save_to_preset(self, path, metadata=None, weights_dtype="float32"):
        """Writes the model as a preset folder (KerasHub's layout): config.json (Keras' own
        serialisation, without the compile config), model.weights.h5 (`weights_dtype`
        "float16" halves its size) and metadata.json (`metadata`, plus the class, the keras-gen
        and Keras versions). `from_preset(path)` loads it."""
        checks.choice("weights_dtype", weights_dtype, ("float32", "float16"))
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = keras.saving.serialize_keras_object(self)
        config.pop("compile_config", None)
        (path / "config.json").write_text(json.dumps(config, indent=1))
        optimizers = [name for name in dir(self) if not name.startswith("__")
                      and isinstance(getattr(self, name, None), keras.optimizers.Optimizer)]
        full = path / "model.full.weights.h5"
        self.save_weights(str(full), overwrite=True)
        copy_weights_file(full, path / "model.weights.h5", skip=optimizers,
                          float16=weights_dtype == "float16", links=self.preset_weight_links)
        full.unlink()
        metadata = {
            **(metadata or {}),
            "class_name": type(self).__name__,
            "registered_name": keras.saving.get_registered_name(type(self)),
            "keras_gen_version": __version__,
            "keras_version": keras.__version__,
            "weights_dtype": weights_dtype,
        }
        (path / "metadata.json").write_text(json.dumps(metadata, indent=1, default=str))
        return path

    # -- serialisation ------------------------------------------------------------------------

    # Constructor arguments that are Keras networks (the user's own), serialised in the config
    # (when set). A class whose networks are named choices (DCGAN) rebuilds them instead.
    network_args = ()
    # Constructor arguments saved in the config, each read from the attribute of the same name;
    # every class lists its own (keras_gen.configs).
    config_args = ("num_classes", "class_names", "seed")

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in cls.network_args:
            if key in config:  # builders such as DCGAN rebuild their networks instead
                config[key] = keras.saving.deserialize_keras_object(config[key])
        if isinstance(config.get("dtype"), dict):  # as keras.layers.Layer.from_config does
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    def get_config(self):
        """Keras' own config (name, trainable, dtype policy), the constructor arguments the
        classes list in `config_args`, and the networks in `network_args`."""
        config = super().get_config()
        config.update(listed_arguments(self), keras_gen_version=__version__)
        for key in self.network_args:
            if getattr(self, key) is not None:
                config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config


class AdversarialModel(GenerativeModel):
    """A generator and a discriminator with an optimiser each (GAN, Pix2Pix). The generator's
    is Keras' own `optimizer`, so its `iterations` count the training steps for callbacks and
    the step noise; the discriminator's, `d_optimizer`, is extra state, saved with the model and
    in checkpoints. Subclasses set `self.generator` and `self.discriminator` and give
    `default_optimizer`."""

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Two optimisers (`default_optimizer(...)` for the ones not given); the rest of Keras'
        compile arguments as usual."""
        if "optimizer" in kwargs:
            raise ValueError(
                f"{type(self).__name__} has two optimisers: pass d_optimizer= and g_optimizer= "
                "instead of optimizer=."
            )
        d_optimizer = keras.optimizers.get(d_optimizer or self.default_optimizer("d_optimizer"))
        g_optimizer = keras.optimizers.get(g_optimizer or self.default_optimizer("g_optimizer"))
        if d_optimizer is g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two different optimiser objects.")
        super().compile(optimizer=g_optimizer, **kwargs)
        # Keras wraps its own `optimizer` in a LossScaleOptimizer under mixed_float16; the
        # discriminator's needs the same.
        self.d_optimizer = self.loss_scaled(d_optimizer)
        with self.distribute_strategy.scope():
            self.d_optimizer.build(self.discriminator.trainable_variables)

    def default_optimizer(self, argument="g_optimizer"):
        """A new instance of the optimiser `compile()` gives `argument`, "d_optimizer" or
        "g_optimizer" ("optimizer", Keras' own, is the generator's): Adam with the family's
        `adam_settings()[argument]` (a dict per network, so the two may differ)."""
        argument = "g_optimizer" if argument == "optimizer" else argument
        checks.choice("argument", argument, ("d_optimizer", "g_optimizer", "optimizer"))
        return keras.optimizers.Adam(**self.adam_settings()[argument])

    @property
    def g_optimizer(self):
        return self.optimizer

    def optimized_variables(self):
        return self.generator.trainable_variables

    def get_compile_config(self):
        if not getattr(self, "compiled", False):
            return None
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
        )


class Sampler:
    """The sampler kind (GAN, VAE, PixelCNN, VQ-VAE): images from noise with
    `generate(n, seed, labels)`. Mixed in before the family's `GenerativeModel` base."""

    # Images per network call in `generate` (a family may choose less, e.g. PixelCNN).
    generate_batch_size = 256

    @property
    def noise_shape(self):
        """Shape of the noise behind one generated image (latent vectors: (latent_dim,))."""
        return (self.latent_dim,)

    def latent_vectors(self, n, seed):
        """The latent vectors `generate(n, seed)` uses: N(0, I), NumPy, so they are the same on
        every machine; image k's vector does not depend on n."""
        return np.random.default_rng(seed).standard_normal((n,) + self.noise_shape).astype(np.float32)

    def generation_noise(self, seed, start, stop):
        """The noise of images start..stop-1 of `generate(n, seed)`, (stop - start,
        *noise_shape). Default: latent vectors."""
        return self.latent_vectors(stop, seed)[start:]

    def images_from_noise(self, noise, labels=None, **options):
        """The family's step: noise (batch, *noise_shape) and int32 labels (batch,) or None ->
        images (batch, H, W, C) in [0, 1], as NumPy or a tensor."""
        raise NotImplementedError

    def generate(self, n=None, seed=None, labels=None, batch_size=None, z=None, verbose="auto",
                 conditions=None, **options):
        """`n` images as a float32 NumPy array (n, H, W, C) in [0, 1]. Same seed, same images.

        labels: one label per image, or one for all (conditional models): class indices, or
        class names when the model has `class_names` ("Sneaker"), mixed as you like. z: the noise itself,
        (n, *noise_shape), instead of the noise of `seed` (latent vectors for GAN/VAE). verbose: a
        progress bar per batch, as in Keras' `predict` ("auto": when there are several batches;
        0: none). conditions: what a text model conditions on in place of labels, one row per
        image (the token ids of its prompts; `keras_gen.text.TextConditioned.generate` passes
        them). Other keyword options go to the family's `images_from_noise`."""
        if options.pop("prompts", None) is not None:
            raise ValueError(
                f"prompts= needs a text-conditioned model (e.g. DCGAN(..., text=True)); "
                f"{type(self).__name__} is not one. Generate with n (and labels) instead."
            )
        n = checks.count(n)
        if conditions is not None:
            labels = np.asarray(conditions)
            if len(labels) != n:
                raise ValueError(f"conditions must have one row per image ({n}); got {len(labels)}.")
        else:
            labels = self.label_indices(labels, n)
        batch_size = checks.positive_int("batch_size", batch_size or self.generate_batch_size)
        if z is not None:
            z = np.asarray(z, np.float32)
            if z.shape != (n,) + tuple(self.noise_shape):
                raise ValueError(f"z must have shape {(n,) + tuple(self.noise_shape)}; got {z.shape}.")
        else:
            seed = checks.seed_or_fresh(seed)
        out = np.zeros((n,) + self.image_shape, np.float32)
        starts = range(0, n, batch_size)
        for start in progress.tracked(starts, len(starts), verbose):
            stop = min(n, start + batch_size)
            noise = z[start:stop] if z is not None else self.generation_noise(seed, start, stop)
            batch_labels = None if labels is None else labels[start:stop]
            out[start:stop] = keras.ops.convert_to_numpy(
                self.images_from_noise(noise, batch_labels, **options)
            )
        return np.clip(out, 0.0, 1.0)


class Translator:
    """The translator kind (Pix2Pix): `translate(inputs)` maps each input image to an output
    image, both in [0, 1] whatever `image_range` it trains in; trained on (input, target) pairs
    from `keras_gen.data.load_pairs` (in `image_range`). Mixed in before
    the family's `GenerativeModel` base, which sets `image_range`."""

    def to_unit_range(self, images):
        """Images in `image_range` -> [0, 1], NumPy float32."""
        return to_unit_range(images, self.image_range)

    def from_unit_range(self, images):
        """Images in [0, 1] -> `image_range` (what `translate` takes)."""
        images = np.asarray(images, np.float32)
        return images * 2.0 - 1.0 if self.image_range == "tanh" else images


def to_unit_range(images, image_range):
    """Images in `image_range` ("tanh": [-1, 1], or "unit") -> [0, 1], NumPy float32, clipped:
    the one conversion GAN and Pix2Pix outputs share."""
    images = np.asarray(keras.ops.convert_to_numpy(images), np.float32)
    if image_range == "tanh":
        images = (images + 1.0) / 2.0
    return np.clip(images, 0.0, 1.0)

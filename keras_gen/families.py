"""The registry of model families. Each family describes itself once, next to its model (a
`FAMILY` in its module under keras_gen/models/); the command, the export signatures, the
metrics and callbacks, and the tests all read that description through this registry.

A description says what kind of model the family is (a sampler from noise or a translator from
an input image), its data range and batch size, its default metrics, its command options (help,
choices; defaults are the constructor's own, read from its signature, never restated), its
optimisers, its extra callbacks and the key of its export signatures.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Callable

SAMPLER = "sampler"  # generate(n, seed, labels): images from noise
TRANSLATOR = "translator"  # translate(images): an output image for each input image
KINDS = (SAMPLER, TRANSLATOR)


@dataclasses.dataclass(frozen=True)
class Option:
    """A command option of a family: a constructor argument (flag --latent-dim sets argument
    latent_dim) or, with `constructor=False`, a setting the command itself reads.

    type: int, float, str or bool (bool takes on/off); `none=True` also accepts "none", which
    passes None to the constructor (turns the feature off). Several families may list an option
    of the same name: the command then has one flag for all of them."""

    name: str
    help: str
    type: Callable = str
    choices: tuple | None = None
    none: bool = False
    constructor: bool = True
    metavar: str | None = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


# Options several families take with the same meaning: one help text, so the command's single
# flag for them reads the same for each family.
LATENT_DIM_OPTION = Option("latent_dim", "size of the latent vector z", int)
FILTERS_OPTION = Option("filters", "base width of the networks", int)


@dataclasses.dataclass(frozen=True)
class FamilyDescription:
    """What the library and the command need to know about one family.

    name: the command's name for it (`keras-gen train --model NAME`).
    model: the class the command builds (its constructor's defaults are the family's defaults).
    kind: SAMPLER or TRANSLATOR (translators train on (input, target) pairs); by default what
      the model class is (a `Translator` subclass, or else a sampler).
    data_range: the `image_range` its data is loaded in, at the constructor's defaults.
    metrics: its headline metrics (`keras_gen.metrics.default_metrics`).
    likelihood: "bound" (evaluate_elbo and an importance-weighted log_likelihood), "exact"
      (log_likelihood) or None.
    options: command options (`Option`); sample_options: keyword options of `generate` that
      `keras-gen sample` passes (e.g. steps= of a diffusion sampler).
    optimizers: compile() argument -> the flag of its own learning rate (--lr sets them all).
    callbacks: (args, model, out, load) -> the family's extra training callbacks; `load(**options)`
      loads the run's data in the model's range.
    build: (args, info) -> the model, for a family built from another run (vqvae-prior).
    instances: models of this class belong to the family (default: `model`); None for a
      family that is a stage of another (vqvae-prior trains a VQVAE's prior).
    signatures: the key of its export signature builder (export/signatures.py registers one
      per key; the library never imports export/).
    sample_grid: False when a fresh model cannot generate yet (a VQ-VAE before its prior).
    """

    name: str
    model: type
    data_range: str
    metrics: tuple
    kind: str | None = None
    options: tuple = ()
    sample_options: tuple = ()
    optimizers: dict = dataclasses.field(default_factory=lambda: {"optimizer": None})
    likelihood: str | None = None
    callbacks: Callable | None = None
    build: Callable | None = None
    instances: type | None | str = "model"
    signatures: str | None = None
    sample_grid: bool = True

    def __post_init__(self):
        if self.kind is None:  # what the model class is: a Translator, or else a Sampler
            from keras_gen.models.base import Translator

            object.__setattr__(self, "kind", TRANSLATOR if issubclass(self.model, Translator) else SAMPLER)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}.")
        if self.instances == "model":
            object.__setattr__(self, "instances", self.model)

    @property
    def default_batch_size(self):
        return self.model.default_batch_size

    def defaults(self):
        """{option: the constructor's default} of the constructor options."""
        parameters = constructor_parameters(self.model)
        return {o.name: parameters[o.name].default for o in self.options if o.constructor}


def constructor_parameters(cls):
    """{name: inspect.Parameter} of `cls`'s constructor, including the arguments a subclass
    passes on in **kwargs to its bases."""
    parameters = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for key, p in inspect.signature(klass.__init__).parameters.items():
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    parameters.setdefault(key, p)
    return parameters


_REGISTRY = {}


def _load():
    if not _REGISTRY:
        from keras_gen import models

        found = {}
        for module_info in pkgutil.iter_modules(models.__path__):
            module = importlib.import_module(f"{models.__name__}.{module_info.name}")
            described = getattr(module, "FAMILY", ())
            for description in described if isinstance(described, tuple) else (described,):
                if description.name in found:
                    raise ValueError(f"two families are named {description.name!r}.")
                found[description.name] = description
        _REGISTRY.update(sorted(found.items()))
    return _REGISTRY


def names():
    """The families' names, sorted."""
    return tuple(_load())


def get(name):
    """The description of the family `name`."""
    registry = _load()
    if name not in registry:
        raise ValueError(f"model family must be one of {', '.join(registry)}; got {name!r}.")
    return registry[name]


def all_families():
    """Every family's description, by name."""
    return tuple(_load().values())


def of(model):
    """The description of the family `model` belongs to (the most specific class), or None
    for anything that is not a keras-gen model."""
    best, depth = None, -1
    for description in _load().values():
        cls = description.instances
        if cls is not None and isinstance(model, cls):
            d = len(cls.__mro__)
            if d > depth:
                best, depth = description, d
    return best


def kind_of(model):
    """SAMPLER or TRANSLATOR for a keras-gen model, None for anything else."""
    description = of(model)
    return None if description is None else description.kind

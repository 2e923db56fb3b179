"""Configs from the constructor arguments a class lists: a class names its own arguments once in
`config_args`, each read from the attribute of the same name, and `get_config` serialises those of
every class in its hierarchy (Keras objects with Keras' serialiser, tuples as lists, as JSON holds
them)."""

from __future__ import annotations

import keras


def listed_arguments(obj):
    """{name: serialisable value} of the constructor arguments that the classes of `obj` list in
    their own `config_args`, bases first."""
    values = {}
    for cls in reversed(type(obj).__mro__):
        for name in vars(cls).get("config_args", ()):
            values[name] = serializable(getattr(obj, name))
    return values


def serializable(value):
    if isinstance(value, (keras.layers.Layer, keras.initializers.Initializer)):
        return keras.saving.serialize_keras_object(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class ListedConfig:
    """Mixed in before a Keras class: `get_config` is Keras' own (name, dtype policy, ...) plus the
    listed constructor arguments."""

    config_args = ()

    def get_config(self):
        return {**super().get_config(), **listed_arguments(self)}

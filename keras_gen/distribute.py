"""Choosing a `tf.distribute` strategy.

Build and compile models under `strategy.scope()`; `fit` then splits each global batch of a
`keras_gen.data.load` dataset across the replicas. keras-gen's train steps are replica-exact:
the same global batch and seed give the same update on 1, 2 or 4 replicas (see the guide).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
_MIRRORED = {}


def _tpu_strategy():
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _local_devices():
    """GPUs if there are any, else every logical CPU device (several only when configured with
    tf.config.set_logical_device_configuration, as the tests do)."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def get_strategy(name="auto", devices=None):
    """Returns a `tf.distribute.Strategy`.

    - "auto": a TPU if one is configured, MirroredStrategy over several GPUs, a
      MultiWorkerMirroredStrategy when TF_CONFIG names several workers, else the default strategy;
    - "default": the default (no-op) strategy;
    - "one_device": OneDeviceStrategy on the first GPU, else the CPU;
    - "mirrored": MirroredStrategy over `devices` (default: all GPUs, or all logical CPUs);
    - "multi_worker": MultiWorkerMirroredStrategy, which reads TF_CONFIG;
    - "tpu": TPUStrategy.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}.")
    if name == "auto":
        if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
            return _tpu_strategy()
        if _tf_config_workers() > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return get_strategy("mirrored", devices)
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy((devices or _local_devices())[0])
    if name == "mirrored":
        # One strategy per device set and process: two MirroredStrategy objects over the same
        # devices reuse collective instance keys, and the second then fails with "Shape mismatch
        # in the collective instance" (re-running a notebook cell is enough to hit it).
        key = tuple(devices or _local_devices())
        if key not in _MIRRORED:
            _MIRRORED[key] = tf.distribute.MirroredStrategy(list(key))
        return _MIRRORED[key]
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy='multi_worker' needs the TF_CONFIG environment variable, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}, set on every worker.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy()


def _tf_config_workers():
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
    return len(config.get("cluster", {}).get("worker", []))


def is_chief():
    """True on the worker that writes files (worker 0, or the only process)."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    except json.JSONDecodeError:
        return True
    return task.get("type", "worker") in ("worker", "chief") and task.get("index", 0) == 0

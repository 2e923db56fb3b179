"""Replica-exact training under tf.distribute: 1 replica and 2 (logical CPU devices) give the
same weights and logs for the same global batch and seed; noise differs between replicas;
MultiWorkerMirroredStrategy across two real processes equals one process; mixed precision."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import families
from families import assert_same_training, train
from keras_gen import distribute
from keras_gen.layers.dropout import ReplicaExactDropout

HERE = os.path.dirname(os.path.abspath(__file__))


def test_get_strategy():
    assert families.two_replicas().num_replicas_in_sync == 2
    gpus = tf.config.list_logical_devices("GPU")
    local = len(gpus) or len(tf.config.list_logical_devices("CPU"))
    assert distribute.get_strategy("mirrored").num_replicas_in_sync == local
    assert distribute.get_strategy("one_device").num_replicas_in_sync == 1
    if len(gpus) < 2:  # one GPU or none, no TF_CONFIG: the default strategy
        assert distribute.get_strategy("auto") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="strategy must be one of"):
        distribute.get_strategy("mirror")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.get_strategy("multi_worker")


@pytest.mark.parametrize("family", families.FAMILIES)
def test_two_replicas_equal_one(family):
    one, logs_one = train(family, tf.distribute.get_strategy())
    two, logs_two = train(family, families.two_replicas())
    assert two.distribute_strategy.num_replicas_in_sync == 2
    assert_same_training(one, logs_one, two, logs_two)


@pytest.mark.slow  # several trainings per test: the slow tier, still in CI
@pytest.mark.parametrize("num_classes", [None, 10])
def test_dcgan_defaults_with_augmentation_and_dropout_are_replica_exact(num_classes):
    """DCGAN at its defaults plus every kind of noise a step draws (DiffAugment, dropout): the
    noise of the global batch is drawn once and sliced, so 2 replicas equal 1. The same model
    with each of them switched off trains otherwise, so both are active in the step."""
    options = dict(num_classes=num_classes, diffaugment="color,translation,cutout", dropout=0.3)
    one, logs_one = train("dcgan", tf.distribute.get_strategy(), **options)
    two, logs_two = train("dcgan", families.two_replicas(), **options)
    assert_same_training(one, logs_one, two, logs_two)
    dropouts = [l for l in one.discriminator._flatten_layers() if isinstance(l, ReplicaExactDropout)]
    assert one.diffaugment == ("color", "translation", "cutout") and [l.rate for l in dropouts] == [0.3]
    if num_classes is None:  # the switches are the same with labels: check them once
        def no_augmentation(model):
            model.diffaugment = ()

        def no_dropout(model):
            for layer in model.discriminator._flatten_layers():
                if isinstance(layer, ReplicaExactDropout):
                    layer.rate = 0.0

        for switch_off in (no_augmentation, no_dropout):
            off, _ = train("dcgan", tf.distribute.get_strategy(), before=switch_off, **options)
            differences = [np.abs(a - b).max() for a, b in zip(one.get_weights(), off.get_weights())]
            assert max(differences) > 1e-3, f"{switch_off.__name__} trains the same: it was not active"


@pytest.mark.slow  # several trainings per test: the slow tier, still in CI
def test_wgan_gp_under_mirrored_strategy_equals_one_replica():
    # Two critic steps, each on its own strided half of every replica's batch of 8.
    options = dict(loss="wasserstein_gp", discriminator_steps=2)
    one, logs_one = train("dcgan", tf.distribute.get_strategy(), **options)
    two, logs_two = train("dcgan", families.two_replicas(), **options)
    assert_same_training(one, logs_one, two, logs_two)
    assert "gradient_penalty" in logs_one


def test_noise_differs_between_replicas_and_tiles_the_global_draw():
    strategy = families.two_replicas()
    with strategy.scope():
        model = families.build("dcgan")

    @tf.function
    def draw():
        return strategy.run(lambda: model.step_noise(tf.constant(3, tf.int64), 0, 4, (8,)))

    per_replica = strategy.experimental_local_results(draw())
    a, b = (t.numpy() for t in per_replica)
    assert not np.allclose(a, b)
    whole = model.step_noise(tf.constant(3, tf.int64), 0, 8, (8,)).numpy()  # one replica, global batch
    np.testing.assert_array_equal(np.concatenate([a, b]), whole)


@pytest.mark.parametrize("family", families.FAMILIES)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_finite_losses(family, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model, logs = train(family, tf.distribute.get_strategy(), optimizers="defaults")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.isfinite(v) for v in logs.values())
    optimizers = [model.optimizer] + ([model.d_optimizer] if hasattr(model, "d_optimizer") else [])
    for optimizer in optimizers:
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    images = model.generate(2, seed=0, labels=[0, 1] if model.num_classes else None)
    assert images.dtype == np.float32 and np.all(np.isfinite(images))


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("family", families.FAMILIES)
def test_multi_worker_equals_single_process(family, tmp_path):
    script = os.path.join(HERE, "_multi_worker.py")
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    processes = []
    try:
        for index in range(2):
            tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            processes.append(subprocess.Popen(
                [sys.executable, script, family, str(tmp_path / f"w{index}.npz"), "multi"],
                env={**env, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            ))
        single = subprocess.run([sys.executable, script, family, str(tmp_path / "single.npz"), "single"],
                                env=env, capture_output=True, text=True, timeout=300)
        assert single.returncode == 0, single.stdout + single.stderr
        for p in processes:
            output, _ = p.communicate(timeout=300)
            assert p.returncode == 0, output.decode()[-3000:]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    w0, w1, ws = (np.load(tmp_path / f) for f in ("w0.npz", "w1.npz", "single.npz"))
    for key in ws.files:
        np.testing.assert_array_equal(w0[key], w1[key])
        np.testing.assert_allclose(w0[key], ws[key], atol=1e-5)


@pytest.mark.slow  # several trainings per test: the slow tier, still in CI
def test_mirrored_strategy_is_reused_so_repeated_runs_work():
    assert families.two_replicas() is families.two_replicas()
    for _ in range(2):  # a second model on the same devices (a re-run notebook cell)
        train("dcgan", families.two_replicas())


@pytest.mark.slow  # several trainings per test: the slow tier, still in CI
@pytest.mark.parametrize("family", families.FAMILIES)
def test_xla_step_trains_and_repeats(family):
    # XLA's stateless random ops may use another algorithm than TF's kernels, so the noise, and
    # with it the weights, differ from the non-XLA step; what must hold is that the compiled
    # step trains and is as repeatable as the plain one.
    def run():
        model = families.build(family)
        model.compile(jit_compile=True)
        assert model.jit_compile is True  # Keras turns XLA off silently for a model it cannot compile
        initial = [w.copy() for w in model.get_weights()]
        history = model.fit(families.dataset(family), epochs=1, verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values())
        return initial, model.get_weights()

    initial, first = run()
    _, second = run()
    assert any(not np.array_equal(a, b) for a, b in zip(initial, first))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)

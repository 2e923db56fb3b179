"""`keras_gen.training.fit` (and `keras-gen train` on it) is one `model.fit`: Keras callbacks
work as in plain `fit` (EarlyStopping, ReduceLROnPlateau, one on_train_begin, every epoch)."""

import json

import keras
import numpy as np
import pytest

import keras_gen as kg
from keras_gen import cli, training


def _model():
    model = kg.models.DCGAN((8, 8, 1), latent_dim=8, filters=4, seed=1)
    model.compile()
    return model


def _data(epoch):
    return kg.data.load("digits", split="train[:32]", batch_size=16, image_range="tanh",
                        seed=training.epoch_seed(5, epoch))


class Marker(keras.callbacks.Callback):
    """Puts a metric that gets worse every epoch into the logs (so a watcher of its minimum
    sees no improvement after the first epoch), and records what Keras tells callbacks."""

    def __init__(self):
        super().__init__()
        self.train_begins, self.epochs = 0, []

    def on_train_begin(self, logs=None):
        self.train_begins += 1

    def on_epoch_end(self, epoch, logs=None):
        logs["marker"] = float(epoch)
        self.epochs.append(epoch)


def test_a_custom_callback_sees_one_training_and_every_epoch(tmp_path):
    marker = Marker()
    history = training.fit(_model(), _data, 3, tmp_path, callbacks=[marker])
    assert marker.train_begins == 1 and marker.epochs == [0, 1, 2]
    assert len(history["d_loss"]) == 3


def test_early_stopping_stops_fit_after_the_right_epoch(tmp_path):
    marker = Marker()
    stop = keras.callbacks.EarlyStopping(monitor="marker", patience=0, mode="min")
    model = _model()
    history = training.fit(model, _data, 5, tmp_path, callbacks=[marker, stop])
    # epoch 0 is the best; epoch 1 does not improve and, with patience 0, stops the run
    assert marker.epochs == [0, 1] and len(history["d_loss"]) == 2
    assert int(model.optimizer.iterations) == 4
    assert json.loads((tmp_path / "checkpoint.json").read_text())["epoch"] == 2


def test_reduce_lr_on_plateau_changes_the_learning_rate(tmp_path):
    model = _model()
    start = float(model.optimizer.learning_rate)
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="marker", patience=0, factor=0.5, mode="min")
    training.fit(model, _data, 3, tmp_path, callbacks=[Marker(), reduce])
    assert float(model.optimizer.learning_rate) == pytest.approx(start * 0.25)  # epochs 1 and 2


@pytest.fixture
def marked(monkeypatch):
    """The command's SampleGrid also writes the worsening `marker` metric."""
    original = kg.callbacks.SampleGrid.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        logs["marker"] = float(epoch)

    monkeypatch.setattr(kg.callbacks.SampleGrid, "on_epoch_end", on_epoch_end)


TINY = ["train", "--model", "dcgan", "--dataset", "digits", "--split", "train[:32]", "--batch-size", "16",
        "--filters", "4", "--latent-dim", "8", "--samples", "4", "--seed", "0", "--verbose", "0",
        "--eval-samples", "0"]


def test_command_early_stopping(marked, tmp_path):
    out = tmp_path / "run"
    assert cli.main([*TINY, "--epochs", "5", "--early-stopping", "marker:0", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["marker"] == [0.0, 1.0]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]


def test_command_reduce_lr_on_plateau(marked, tmp_path):
    out = tmp_path / "run"
    assert cli.main([*TINY, "--epochs", "3", "--reduce-lr-on-plateau", "marker:0", "--out", str(out)]) == 0
    model = keras.models.load_model(out / "model.keras")
    default = model.default_optimizer("g_optimizer").learning_rate
    assert float(model.optimizer.learning_rate) == pytest.approx(float(default) * 0.01)  # / 10 twice


def test_command_schedule_flags_need_a_metric(tmp_path, capsys):
    assert cli.main([*TINY, "--early-stopping", "val_fid:x", "--out", str(tmp_path / "r")]) == 2
    assert "METRIC[:PATIENCE]" in capsys.readouterr().err


def test_epoch_loader_reloads_with_each_epoch_s_seed():
    load = training.epoch_loader("digits", 5, split="train[:32]", batch_size=32, image_range="unit")
    first = next(iter(load(0))).numpy()
    again = next(iter(load(0))).numpy()
    expected = next(iter(kg.data.load("digits", split="train[:32]", batch_size=32, image_range="unit",
                                   seed=training.epoch_seed(5, 1)))).numpy()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(next(iter(load(1))).numpy(), expected)
    assert not np.array_equal(first, expected)  # another epoch, another order


def test_training_budget_of_steps_spans_every_fit_it_is_given():
    """One budget across a loop of one-epoch fits (2 steps each): it stops the third fit after
    its first step, and the loop ends there."""
    model = _model()
    budget = kg.callbacks.TrainingBudget(steps=5)
    epoch = 0
    while not budget.spent:
        model.fit(_data(epoch), initial_epoch=epoch, epochs=epoch + 1, callbacks=[budget], verbose=0)
        epoch += 1
    assert budget.steps == 5 and epoch == 3 and int(model.optimizer.iterations) == 5
    assert set(budget.logs) >= {"d_loss", "g_loss"}


def test_training_budget_of_cpu_seconds_stops_fit_once_spent():
    import time

    model = _model()
    cpu = time.process_time()
    budget = kg.callbacks.TrainingBudget(cpu_seconds=0.0)  # spent at once: one step, then stop
    model.fit(_data(0).repeat(), epochs=1_000, callbacks=[budget], verbose=0)
    assert budget.steps == 1 and budget.spent
    assert 0 < budget.used_cpu_seconds <= time.process_time() - cpu
    assert budget.used_seconds > 0


def test_training_budget_needs_a_budget():
    with pytest.raises(ValueError, match="at least one of seconds=, cpu_seconds= or steps="):
        kg.callbacks.TrainingBudget()
    with pytest.raises(ValueError, match="steps"):
        kg.callbacks.TrainingBudget(steps=0)

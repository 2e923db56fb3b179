"""What the `throughput_<family>.py` modules of benchmarks/train_throughput.py share."""

import tensorflow as tf

from keras_gen.networks import policy_scope


def train_call(model, batch):
    """One call of the model's compiled train function on a fixed in-memory batch (distributed
    over the model's strategy when it has its own)."""
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    if model.distribute_strategy is not tf.distribute.get_strategy():
        dataset = model.distribute_strategy.experimental_distribute_dataset(dataset)
    iterator = iter(dataset)
    model.make_train_function()
    return lambda: model.train_function(iterator)


def case(name, model, batch_size, reference_call, reference_name, batch):
    """A row of the runner: `model`'s train function (its steps_per_execution steps per call)
    against `reference_call` (one step per call)."""
    return {
        "name": f"{name} 28x28x1 (jit_compile={model.jit_compile})",
        "images_per_call": batch_size * model.steps_per_execution,
        "reference_images_per_call": batch_size,
        "ours": train_call(model, batch),
        "reference": reference_call,
        "reference_name": reference_name,
    }


def policy_lever(label, build, batch_size, batch, policy="mixed_bfloat16"):
    """A "lever:" row: `build()` (a compiled model) under `policy` against the same model in
    float32, timed in alternation (the reference column is our own float32 step)."""
    base = build()
    with policy_scope(policy):
        model = build()
    return case(f"lever: {policy} vs float32, {label}", model, batch_size,
                train_call(base, batch), "the same step in float32", batch)

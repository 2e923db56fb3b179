"""Trains the small classifier whose penultimate features the "fashion_mnist" FID/KID extractor
uses, and reports its test accuracy.

The shipped weights (keras_gen/weights/fashion_mnist_classifier.keras) come from:

    python scripts/train_feature_classifier.py          # Debian's full Fashion-MNIST, 60k/10k

Any labelled 28x28 data set works the same way, e.g. MNIST in IDX files:

    python scripts/train_feature_classifier.py --dataset idx:/path/to/mnist \\
        --out mnist_classifier.keras
    # then: keras_gen.metrics.feature_extractor("mnist_classifier.keras")

The classifier is saved without optimiser state (a few hundred KB) next to a JSON file with its
test accuracy and the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_DATASET = "idx:/usr/share/datasets/fashion-mnist"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "keras_gen" / "weights" / "fashion_mnist_classifier.keras"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="a keras_gen.data name with labels (default: %(default)s)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test",
                        help="split to report accuracy on; use e.g. 'train[90%%:]' (with "
                             "--train-split 'train[:90%%]') for a source with one split")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--feature-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)

    import keras

    from keras_gen import data as kg_data
    from keras_gen.metrics import feature_classifier

    keras.utils.set_random_seed(args.seed)
    info = kg_data.info(args.dataset, split=args.train_split)
    if info.num_classes is None:
        sys.exit(f"{args.dataset} has no labels; the classifier needs a labelled data set.")
    if info.image_shape[-1] != 1:
        sys.exit(f"expected grey images (H, W, 1); {args.dataset} has {info.image_shape}.")
    train = kg_data.load(args.dataset, split=args.train_split, batch_size=args.batch_size,
                         image_range="unit", with_labels=True, seed=args.seed)
    test = kg_data.load(args.dataset, split=args.test_split, batch_size=500,
                        image_range="unit", with_labels=True, shuffle=False)

    model = feature_classifier(info.image_shape, info.num_classes, args.feature_dim)
    steps = args.epochs * -(-info.num_examples // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.time()
    model.fit(train, epochs=args.epochs, validation_data=test, shuffle=False, verbose=2)
    train_seconds = time.time() - start
    _, accuracy = model.evaluate(test, verbose=0)

    # A fresh, uncompiled copy: the saved file holds the weights and the architecture only.
    clean = feature_classifier(info.image_shape, info.num_classes, args.feature_dim)
    clean.set_weights(model.get_weights())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean.save(out)
    report = {
        "dataset": args.dataset,
        "train_split": args.train_split,
        "test_split": args.test_split,
        "num_train": info.num_examples,
        "test_accuracy": round(float(accuracy), 4),
        "epochs": args.epochs,
        "train_seconds": round(train_seconds, 1),
        "parameters": clean.count_params(),
        "command": shlex.join(["python", "scripts/train_feature_classifier.py", *(argv or sys.argv[1:])]),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"saved {out} ({out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()

"""Reference FID/KID values with the shipped "fashion_mnist" extractor: the Fashion-MNIST test
set against the training set (the floor a perfect generator would reach with 10,000 samples),
and the classifier's own test accuracy.

    python benchmarks/fid_reference.py [--dataset idx:/usr/share/datasets/fashion-mnist]

Streams both splits through `keras_gen.metrics.feature_statistics` (nothing held in memory but
the running moments and a 10,000-vector reservoir).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="idx:/usr/share/datasets/fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    import numpy as np
    import keras

    import keras_gen as kg
    from keras_gen import metrics as M

    start = time.time()
    classifier = keras.models.load_model(M.FASHION_MNIST_CLASSIFIER)
    test_labelled = kg.data.load(args.dataset, split="test", image_range="unit",
                                 with_labels=True, shuffle=False, batch_size=args.batch_size)
    correct = total = 0
    for images, labels in test_labelled.as_numpy_iterator():
        correct += int((classifier.predict_on_batch(images).argmax(1) == labels).sum())
        total += len(labels)

    def load(split):
        return kg.data.load(args.dataset, split=split, image_range="unit", shuffle=False,
                            batch_size=args.batch_size)

    train_stats = M.feature_statistics(load("train"), "fashion_mnist", batch_size=args.batch_size)
    test_stats = M.feature_statistics(load("test"), "fashion_mnist", batch_size=args.batch_size)
    # A second reference: two disjoint halves of the training set, 10,000 images each.
    half_a = M.feature_statistics(load("train[:10000]"), "fashion_mnist")
    half_b = M.feature_statistics(load("train[50000:]"), "fashion_mnist")
    kid_mean, kid_std = M.kernel_distance(test_stats, train_stats)
    precision, recall = M.precision_recall(train_stats, test_stats)
    result = {
        "classifier_test_accuracy": round(correct / total, 4),
        "fid_test_vs_train": round(M.frechet_distance(test_stats, train_stats), 4),
        "kid_test_vs_train": [round(kid_mean, 6), round(kid_std, 6)],
        "precision_recall_test_vs_train": [round(precision, 4), round(recall, 4)],
        "fid_train[:10000]_vs_train[50000:]": round(M.frechet_distance(half_a, half_b), 4),
        "num_train": train_stats.count,
        "num_test": test_stats.count,
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(result, indent=2))
    assert np.isfinite(result["fid_test_vs_train"])


if __name__ == "__main__":
    main()

"""Trains a Gated PixelCNN on Fashion-MNIST and reports test bits/dim, training time and a
sample grid.

    nice -n 10 python benchmarks/pixelcnn_quality.py --levels 2 --steps 600 \
        --out benchmarks/pixelcnn_samples.png

--levels 2 trains on dynamically binarised images (image_range="binary"; the test set is
binarised once with a fixed seed); --levels 256 on the 8-bit levels (image_range="levels").
"""

from __future__ import annotations

import argparse
import json
import time

import keras_gen as kg
from keras_gen.models.pixelcnn import PixelCNN

DATA = "idx:/usr/share/datasets/fashion-mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--levels", type=int, default=2, choices=(2, 256))
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600, help="training steps (batches of 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/pixelcnn_samples.png")
    args = parser.parse_args()

    image_range = "binary" if args.levels == 2 else "levels"
    train = kg.data.load(
        args.data, split="train", image_range=image_range, batch_size=args.batch_size,
        seed=args.seed, drop_remainder=True,
    ).repeat()
    test = kg.data.load(
        args.data, split="test", image_range=image_range, batch_size=256, shuffle=False,
        seed=args.seed,
    ).cache()  # a fixed binarisation of the test set
    model = PixelCNN(
        (28, 28, 1), levels=args.levels, filters=args.filters, num_layers=args.num_layers,
        variant="gated", seed=args.seed,
    )
    model.compile()
    print(f"parameters: {model.count_params()}", flush=True)
    epochs = max(1, args.steps // 100)
    start = time.time()
    model.fit(train, epochs=epochs, steps_per_epoch=args.steps // epochs, verbose=2)
    train_seconds = time.time() - start
    start = time.time()
    test_bpd = model.bits_per_dim(test)
    eval_seconds = time.time() - start
    start = time.time()
    images = model.generate(64, seed=0)
    sample_seconds = time.time() - start
    kg.callbacks.save_grid(args.out, images, columns=8)
    result = dict(
        levels=args.levels, filters=args.filters, num_layers=args.num_layers, steps=args.steps,
        batch_size=args.batch_size, parameters=int(model.count_params()),
        test_bits_per_dim=round(test_bpd, 4), train_seconds=round(train_seconds, 1),
        eval_seconds=round(eval_seconds, 1), sample_64_seconds=round(sample_seconds, 2),
        grid=args.out,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

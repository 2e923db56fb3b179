"""Trains a ConvVAE on Fashion-MNIST and reports its test negative log-likelihood bounds.

    python benchmarks/vae_quality.py --likelihood discretized_logistic --epochs 3
    python benchmarks/vae_quality.py --likelihood bernoulli --epochs 3

discretized_logistic: 8-bit images in [0, 1], the result in bits/dim (comparable with PixelCNN).
bernoulli: dynamically binarised training images, a test set binarised once (fixed seed), the
result in nats per image. Both report the ELBO on the whole test split and the IWAE bound with
--iwae-samples samples on the first --iwae-examples test images (0: all), and the training time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--likelihood", default="discretized_logistic",
                        choices=["bernoulli", "discretized_logistic", "gaussian"])
    parser.add_argument("--dataset", default="idx:/usr/share/datasets/fashion-mnist")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-epochs", type=int, default=0, help="KL warm-up (0: none)")
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--iwae-examples", type=int, default=1000, help="0: the whole test split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--save", default=None, help="save the trained model here (.keras)")
    args = parser.parse_args(argv)

    import keras

    from keras_gen import data
    from keras_gen.callbacks import KLWarmup
    from keras_gen.models import ConvVAE

    image_range = "binary" if args.likelihood == "bernoulli" else "unit"
    info = data.info(args.dataset, split=args.train_split)
    train = data.load(args.dataset, split=args.train_split, batch_size=args.batch_size,
                      image_range=image_range, seed=args.seed)
    # The test images, fixed once (a "binary" dataset binarises afresh on every pass).
    test = np.concatenate(list(data.load(
        args.dataset, split=args.test_split, batch_size=1000, image_range=image_range,
        shuffle=False, seed=args.seed + 1).as_numpy_iterator()))

    model = ConvVAE(info.image_shape, latent_dim=args.latent_dim, filters=args.filters,
                    likelihood=args.likelihood, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.lr))
    callbacks = [KLWarmup(epochs=args.warmup_epochs)] if args.warmup_epochs else []
    start = time.time()
    history = model.fit(train, epochs=args.epochs, callbacks=callbacks, verbose=2)
    train_seconds = time.time() - start
    if args.save:
        model.save(args.save)

    start = time.time()
    elbo = model.evaluate_elbo(test, batch_size=500)
    subset = test if args.iwae_examples == 0 else test[: args.iwae_examples]
    iwae = model.log_likelihood(subset, num_samples=args.iwae_samples, batch_size=50)
    elbo_subset = model.evaluate_elbo(subset, batch_size=50)
    eval_seconds = time.time() - start

    result = {
        "likelihood": args.likelihood,
        "dataset": args.dataset,
        "train_examples": info.num_examples,
        "epochs": args.epochs,
        "parameters": model.count_params(),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "final_train_loss": float(history.history["loss"][-1]),
        "test_elbo": elbo,
        "iwae_subset": iwae,
        "elbo_same_subset": elbo_subset,
        "args": vars(args),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

"""FID, KID, precision and recall of a trained generator against the Fashion-MNIST test set,
with the shipped Fashion-MNIST feature extractor.

    python benchmarks/dcgan_fid.py runs/dcgan_fashion20/model.keras

Needs the full test split from Debian's dataset-fashion-mnist (apt-get install
dataset-fashion-mnist); the same as `keras-gen evaluate --model M --dataset
idx:/usr/share/datasets/fashion-mnist --split test --metrics fid,kid,precision,recall`.
"""

import sys
import time

import keras

import keras_gen as kg

path = sys.argv[1] if len(sys.argv) > 1 else "runs/dcgan_fashion20/model.keras"
start = time.time()
model = keras.models.load_model(path)
test = kg.data.load("idx:/usr/share/datasets/fashion-mnist", split="test", image_range="unit",
                    shuffle=False, batch_size=250)
results = kg.metrics.quality_metrics(model, test, ("fid", "kid", "precision", "recall"),
                                     "fashion_mnist", num_samples=10_000)
for key, value in results.items():
    print(f"{key:12s} {value}")
print(f"seconds      {time.time() - start:.0f}")

"""Writes the notebooks in notebooks/ from the cell sources below (outputs stripped).

Keeping the sources here makes notebook diffs readable; run `python scripts/make_notebooks.py`
after editing, and commit both.
"""

from pathlib import Path

import nbformat

NOTEBOOKS = {}

NOTEBOOKS["01_dcgan.ipynb"] = [
    ("md", """# DCGAN on Fashion-MNIST with `model.fit`

Load data, build a DCGAN, `compile`, `fit` with TensorBoard and a sample grid, generate, and
generate by class with a conditional DCGAN. `QUICK = True` runs in a minute or two on a CPU;
`QUICK = False` trains long enough to draw recognisable garments."""),
    ("code", """QUICK = True  # False: a real run (20 epochs on the bundled 10k images)"""),
    ("code", """import keras
import numpy as np

import keras_gen as kg

EPOCHS = 1 if QUICK else 20
SPLIT = "train[:512]" if QUICK else "train"
FILTERS = 16 if QUICK else 64
print(kg.data.info("fashion_mnist_10k"))"""),
    ("code", """data = kg.data.load("fashion_mnist_10k", split=SPLIT, batch_size=64, image_range="tanh", seed=0)
gan = kg.models.DCGAN((28, 28, 1), latent_dim=100, filters=FILTERS, seed=0)
gan.compile()  # Adam(2e-4, beta_1=0.5) for both networks
history = gan.fit(
    data,
    epochs=EPOCHS,
    callbacks=[
        keras.callbacks.TensorBoard("runs/nb_dcgan/logs"),
        kg.callbacks.SampleGrid(log_dir="runs/nb_dcgan/logs", png_dir="runs/nb_dcgan/samples", n=64, seed=0),
    ],
)
print({k: round(v[-1], 4) for k, v in history.history.items()})"""),
    ("code", """images = gan.generate(16, seed=0)  # float32 (16, 28, 28, 1) in [0, 1]
assert images.shape == (16, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
kg.callbacks.save_grid("runs/nb_dcgan/grid.png", images)
from IPython.display import Image
Image("runs/nb_dcgan/grid.png", width=240)"""),
    ("md", """## Conditional generation

With `num_classes`, both networks take the label; load the data `with_labels=True` and pass
`labels=` to `generate`."""),
    ("code", """labelled = kg.data.load("fashion_mnist_10k", split=SPLIT, batch_size=64, image_range="tanh",
                        with_labels=True, seed=0)
cgan = kg.models.DCGAN((28, 28, 1), num_classes=10, filters=FILTERS, seed=0)
cgan.compile()
cgan.fit(labelled, epochs=EPOCHS, verbose=0)
by_class = cgan.generate(20, seed=1, labels=np.arange(20) % 10)  # two of each class
print([kg.data.FASHION_MNIST_CLASSES[i] for i in range(10)])
kg.callbacks.save_grid("runs/nb_dcgan/by_class.png", by_class, columns=10)
Image("runs/nb_dcgan/by_class.png", width=400)"""),
    ("code", """cgan.save("runs/nb_dcgan/cgan.keras")
restored = keras.models.load_model("runs/nb_dcgan/cgan.keras")
np.testing.assert_array_equal(restored.generate(4, seed=2, labels=[0, 1, 2, 3]), cgan.generate(4, seed=2, labels=[0, 1, 2, 3]))
print("save/load: same images for the same seed")"""),
]


def build(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "notebooks"
    out.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), out / name)
        print("wrote", out / name)

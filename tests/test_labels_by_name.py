"""Models keep the class names they were trained with: `generate(labels=["Sneaker", ...])`,
`keras-gen sample --labels Sneaker,Bag`, saved in `.keras`, unknown names listed."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from keras_gen import checks, cli, data
from keras_gen.models import DCGAN

NAMES = ("cat", "dog", "owl")


def tiny(class_names=NAMES, num_classes=3):
    return DCGAN((8, 8, 1), latent_dim=4, filters=4, num_classes=num_classes, seed=3,
                 class_names=class_names)


def test_checks_labels_maps_names_and_lists_them_when_unknown():
    assert checks.labels(["owl", 0, "dog"], 3, 3, NAMES).tolist() == [2, 0, 1]
    assert checks.labels("dog", 4, 3, NAMES).tolist() == [1, 1, 1, 1]
    assert checks.labels(np.array([2, 1]), 2, 3, NAMES).tolist() == [2, 1]  # indices unchanged
    assert checks.labels(np.array(["owl", "cat"]), 2, 3, NAMES).tolist() == [2, 0]
    with pytest.raises(ValueError, match="unknown class name 'Dog'.*'cat', 'dog', 'owl'.*Did you mean 'dog'"):
        checks.labels(["Dog", "cat"], 2, 3, NAMES)
    with pytest.raises(ValueError, match="no class names.*model.class_names"):
        checks.labels(["cat"], 1, 3, None)


def test_generate_by_name_is_generate_by_index_and_survives_save(tmp_path):
    model = tiny()
    by_index = model.generate(3, seed=5, labels=[2, 0, 1])
    np.testing.assert_array_equal(model.generate(3, seed=5, labels=["owl", "cat", 1]), by_index)
    assert not np.array_equal(model.generate(3, seed=5, labels=[0, 0, 0]), by_index)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.class_names == NAMES
    np.testing.assert_array_equal(loaded.generate(3, seed=5, labels=["owl", "cat", "dog"]), by_index)


def test_class_names_are_set_in_python_and_checked():
    model = tiny(class_names=None)
    assert model.class_names is None
    model.class_names = data.info("fashion_mnist_10k").class_names[:3]
    assert model.generate(1, seed=0, labels="Pullover").shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="3 strings"):
        model.class_names = ["a", "b"]
    with pytest.raises(ValueError, match="unconditional"):
        tiny(num_classes=None)


TRAIN = ["--model", "dcgan", "--batch-size", "32", "--filters", "4", "--latent-dim", "8",
         "--samples", "4", "--seed", "0", "--verbose", "0", "--eval-samples", "0", "--epochs", "1",
         "--conditional"]


def sample(model, labels, out):
    return cli.main(["sample", "--model", str(model), "-n", "2", "--seed", "1", "--labels", labels,
                     "--out", str(out)])


def test_sample_labels_by_name_on_the_bundled_set(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TRAIN, "--dataset", "fashion_mnist_10k", "--split", "train[:64]",
                     "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["model_config"]["class_names"][7] == "Sneaker"
    assert sample(run / "model.keras", "Sneaker,Bag", tmp_path / "names.npy") == 0
    assert sample(run / "model.keras", "7,8", tmp_path / "indices.npy") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "names.npy"), np.load(tmp_path / "indices.npy"))
    capsys.readouterr()
    assert sample(run / "model.keras", "Sneaker,Hat", tmp_path / "bad.npy") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-gen sample: error:") and "'Hat'" in err and "'Ankle boot'" in err
    assert "\n" not in err and not (tmp_path / "bad.npy").exists()


def test_sample_labels_by_name_on_a_folder_of_class_folders(tmp_path):
    rng = np.random.default_rng(0)
    for level, name in ((40, "circle"), (200, "square")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(32):
            pixels = np.clip(level + rng.integers(-20, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{i}.png")
    run = tmp_path / "run"
    assert cli.main(["train", *TRAIN, "--dataset", f"folder:{tmp_path / 'imgs'}",
                     "--out", str(run)]) == 0
    assert keras.models.load_model(run / "model.keras").class_names == ("circle", "square")
    assert sample(run / "model.keras", "square,circle", tmp_path / "names.npy") == 0
    assert sample(run / "model.keras", "1,0", tmp_path / "indices.npy") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "names.npy"), np.load(tmp_path / "indices.npy"))

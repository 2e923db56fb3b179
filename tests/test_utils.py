"""`kg.utils.show`: a grid of images for notebooks, drawn with matplotlib when it is installed,
else returned as a PIL image."""

import sys
import types

import numpy as np
import pytest
from PIL import Image

import keras_gen as kg
from keras_gen.callbacks import make_grid


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails, as when not installed
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)


def images(n=5, size=8, channels=1):
    return np.random.default_rng(0).uniform(0, 1, (n, size, size, channels)).astype(np.float32)


def test_without_matplotlib_a_pil_grid_of_the_images(no_matplotlib):
    x = images()
    picture = kg.utils.show(x, cols=3, scale=1)
    assert isinstance(picture, Image.Image)
    np.testing.assert_array_equal(np.asarray(picture), make_grid(x, 3)[..., 0])
    enlarged = np.asarray(kg.utils.show(x, cols=3))  # 8-pixel cells enlarged 8 times
    np.testing.assert_array_equal(enlarged[::8, ::8], make_grid(x, 3)[..., 0])
    rgb = kg.utils.show(images(4, channels=3)[0], scale=1)  # one image
    assert rgb.mode == "RGB" and rgb.size == (10, 10)


def test_titles_add_a_band_of_text_under_each_row(no_matplotlib):
    x = images(4)
    plain = kg.utils.show(x, cols=2, scale=2)
    titled = kg.utils.show(x, cols=2, scale=2, titles=["a", "b", "c", "d"])
    assert titled.width == plain.width and titled.height == plain.height + 2 * 12
    band = np.asarray(titled)[18:30]  # under the first row of 8x8 cells enlarged twice
    assert band.min() < 64  # dark text was drawn in the white band
    with pytest.raises(ValueError, match="one title per image"):
        kg.utils.show(x, titles=["a"])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        kg.utils.show(np.zeros((2, 8, 8, 2)))


def test_with_matplotlib_one_axis_per_image(monkeypatch):
    calls = []

    class Axis:
        def axis(self, *a):
            pass

        def imshow(self, image, **kw):
            calls.append(("imshow", image.shape, kw.get("cmap")))

        def set_title(self, title, **kw):
            calls.append(("title", title))

    class Figure:
        def tight_layout(self):
            pass

    def subplots(rows, cols, **kw):
        calls.append(("subplots", rows, cols))
        return Figure(), np.array([[Axis() for _ in range(cols)] for _ in range(rows)], dtype=object)

    pyplot = types.SimpleNamespace(subplots=subplots)
    monkeypatch.setitem(sys.modules, "matplotlib", types.SimpleNamespace(pyplot=pyplot))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", pyplot)
    figure = kg.utils.show(images(5), cols=2, titles=list("vwxyz"))
    assert calls[0] == ("subplots", 3, 2) and figure is not None
    assert [c for c in calls if c[0] == "imshow"] == [("imshow", (8, 8), "gray")] * 5
    assert [c[1] for c in calls if c[0] == "title"] == list("vwxyz")

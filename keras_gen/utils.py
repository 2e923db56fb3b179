"""Helpers for notebooks: `show(images)` draws a grid of images.

matplotlib is not a dependency of keras-gen: `show` draws with it when it is installed and
otherwise returns a PIL image, which notebooks display as the cell's value."""

from __future__ import annotations

import math

import numpy as np

from keras_gen.callbacks import make_grid

# Cells smaller than this (in pixels) are enlarged in the PIL grid, so 28x28 images are visible.
_MIN_CELL = 64


def show(images, cols=None, titles=None, scale=None):
    """A grid of `images`, float (n, H, W, C), (n, H, W) or one image (H, W[, C]), in [0, 1]
    (what `generate` returns; values outside are clipped), `cols` per row (default: a square
    grid), with an optional title per image (e.g. the class names of the labels).

    With matplotlib: draws a figure and returns it. Without: returns a `PIL.Image` of the grid,
    each pixel enlarged `scale` times (default: so cells are at least 64 pixels high), titles
    written under each row of images."""
    images = _as_batch(images)
    n = len(images)
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != n:
            raise ValueError(f"titles must give one title per image ({n}); got {len(titles)}.")
    cols = max(1, min(n, int(cols))) if cols else max(1, int(math.ceil(math.sqrt(n))))
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return _pil_grid(images, cols, titles, scale)
    rows = int(math.ceil(n / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.5 * rows + (0.3 * rows if titles else 0)),
                                squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            image = images[i]
            if image.shape[-1] == 1:
                ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                ax.imshow(image)
            if titles:
                ax.set_title(titles[i], fontsize=8)
    figure.tight_layout()
    return figure


def _as_batch(images):
    images = np.asarray(images, np.float32)
    if images.ndim == 2:  # one grey image
        images = images[None, ..., None]
    elif images.ndim == 3:  # one image (H, W, C) or grey images (n, H, W)
        images = images[None] if images.shape[-1] in (1, 3) else images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ValueError(
            "images must be (n, H, W, C) with 1 or 3 channels, (n, H, W) or one image; got shape "
            f"{images.shape}."
        )
    return np.clip(images, 0.0, 1.0)


def _pil_grid(images, cols, titles, scale):
    from PIL import Image, ImageDraw

    h = images.shape[1]
    scale = max(1, int(math.ceil(_MIN_CELL / h))) if scale is None else int(scale)
    grid = make_grid(images, cols)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if not titles:
        return picture
    # A band of text under each row of cells.
    band, pad = 12, scale  # make_grid's 1-pixel padding, enlarged
    cell_h, cell_w = (h + 1) * scale, (images.shape[2] + 1) * scale
    rows = int(math.ceil(len(images) / cols))
    out = Image.new(picture.mode, (picture.width, picture.height + rows * band), 255)
    draw = ImageDraw.Draw(out)
    for r in range(rows):
        strip = picture.crop((0, r * cell_h, picture.width, (r + 1) * cell_h + (pad if r == rows - 1 else 0)))
        out.paste(strip, (0, r * (cell_h + band)))
        for c in range(cols):
            i = r * cols + c
            if i < len(titles):
                draw.text((pad + c * cell_w, r * (cell_h + band) + cell_h + 1), titles[i][: max(1, cell_w // 6)],
                          fill=0)
    return out

"""The prompt grid of a text-to-image model of the tinted, captioned Fashion-MNIST, as a PNG.

One sample of every (class, colour) caption, "a red sneaker" phrasing, classes down and colours
across, the pairs never seen in training (`keras_gen.data.UNSEEN_CAPTION_PAIRS`) framed.
Prints how many cells show the class (the shipped classifier on the luminance) and the colour
(`keras_gen.data.judge_colour`) the prompt asks for: a look, not a measurement (one sample a
cell; `benchmarks/text_quality.py` measures).

    python benchmarks/text_prompt_grid.py --model keras_gen/presets/text_fashion_mnist_colours
    python benchmarks/text_prompt_grid.py --model runs/text/model.keras --out grid.png
    python benchmarks/text_prompt_grid.py --train-cpu-seconds 300 --model runs/text_cpu300.keras

--model: a `.keras` file, or a preset (a shipped name or a folder; `from_preset`).
--train-cpu-seconds S: first train a `DCGAN(text=True)` at its defaults on the bundled
`fashion_mnist_10k_captions` (`adapt`, `compile()`, `fit` at the family's batch) until the
process has spent S CPU-seconds in `fit` (tracing included), and save it as --model.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCALE, GAP, LABEL_W, HEADER_H = 2, 4, 76, 16
BACKGROUND, FRAME, INK = (40, 40, 40), (235, 235, 235), (235, 235, 235)


def load_model(path):
    import keras

    import keras_gen as kg

    if str(path).endswith(".keras"):
        return keras.models.load_model(path)
    return kg.models.GenerativeModel.from_preset(path)


def train(cpu_seconds, path):
    """A DCGAN(text=True) at its defaults, trained for `cpu_seconds` of process CPU time in `fit`
    on the bundled captioned set, saved to `path`."""
    import keras_gen as kg

    info = kg.data.info("fashion_mnist_10k_captions", text=True)
    model = kg.models.DCGAN(info.image_shape, text=True, seed=0)
    data = kg.data.load("fashion_mnist_10k_captions", text=True, model=model, seed=0)
    model.adapt(data)
    model.compile()

    budget = kg.callbacks.TrainingBudget(cpu_seconds=cpu_seconds)
    model.fit(data, epochs=10_000, verbose=0, callbacks=[budget])
    print(f"trained {budget.steps} steps, {budget.used_cpu_seconds:.0f} CPU-s, "
          f"{budget.used_seconds:.0f} s wall, load average {os.getloadavg()[0]:.1f}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    model.save(path)


def draw(images, unseen, row_names, col_names):
    """images (rows * cols, H, W, 3) in [0, 1], row-major; unseen (rows, cols) bool -> a PIL
    image with the row and column names and the unseen cells framed."""
    import numpy as np
    from PIL import Image, ImageDraw

    rows, cols = len(row_names), len(col_names)
    h, w = images.shape[1] * SCALE, images.shape[2] * SCALE
    cell_w, cell_h = w + GAP, h + GAP
    canvas = Image.new("RGB", (LABEL_W + cols * cell_w + GAP, HEADER_H + rows * cell_h + GAP), BACKGROUND)
    pen = ImageDraw.Draw(canvas)
    for c, name in enumerate(col_names):
        pen.text((LABEL_W + GAP + c * cell_w, 2), name, fill=INK)
    for r in range(rows):
        pen.text((4, HEADER_H + GAP + r * cell_h + h // 2 - 6), row_names[r], fill=INK)
        for c in range(cols):
            pixels = (np.clip(images[r * cols + c], 0, 1) * 255).round().astype(np.uint8)
            pixels = np.repeat(np.repeat(pixels, SCALE, 0), SCALE, 1)
            x, y = LABEL_W + GAP + c * cell_w, HEADER_H + GAP + r * cell_h
            canvas.paste(Image.fromarray(pixels), (x, y))
            if unseen[r, c]:
                pen.rectangle((x - 2, y - 2, x + w + 1, y + h + 1), outline=FRAME, width=2)
    return canvas


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .keras file, or a preset name or folder")
    parser.add_argument("--out", default="docs/text_prompts.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-cpu-seconds", type=float, default=None,
                        help="train a DCGAN(text=True) for this budget first, saved as --model")
    args = parser.parse_args(argv)
    if args.train_cpu_seconds is not None:
        if not args.model.endswith(".keras"):
            parser.error("--train-cpu-seconds saves the model it trains: give --model PATH.keras")
        train(args.train_cpu_seconds, args.model)

    import numpy as np

    import keras_gen as kg

    model = load_model(args.model)
    nouns, names = kg.data.CAPTION_CLASS_NOUNS, kg.data.CAPTION_COLOURS
    rows, cols = len(nouns), len(names)
    classes, colours = np.divmod(np.arange(rows * cols), cols)
    prompts = [kg.data.caption(k, c) for k, c in zip(classes, colours)]
    images = model.generate(prompts=prompts, seed=args.seed)
    unseen = kg.data.is_unseen_pair(classes, colours)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    draw(images, unseen.reshape(rows, cols), nouns, names).save(args.out)

    classifier = kg.metrics._classifier("fashion_mnist")
    luminance = kg.data.garment_luminance(images)
    class_ok = np.argmax(classifier.predict(luminance, verbose=0), -1) == classes
    colour_ok = kg.data.judge_colour(images) == colours
    print(f"{args.out}: {type(model).__name__} from {args.model}, seed {args.seed}, one sample "
          f"per prompt")
    for name, where in (("seen", ~unseen), ("unseen (framed)", unseen)):
        print(f"  {name:16s} {int(where.sum()):2d} prompts: class {int(class_ok[where].sum())}, "
              f"colour {int(colour_ok[where].sum())}")


if __name__ == "__main__":
    main()

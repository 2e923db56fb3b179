"""Text-to-image quality per CPU minute: train each text-conditioned family for a fixed wall-clock
budget on captioned, tinted Fashion-MNIST, then judge `--samples-per-prompt` samples of each
prompt, over (class, colour) pairs seen in training and pairs never seen (the data's split
"unseen", `keras_gen.data.UNSEEN_CAPTION_PAIRS`):

- class correct: the shipped Fashion-MNIST classifier on each sample's luminance
  (`keras_gen.data.garment_luminance`), against the class the prompt names;
- colour correct: `keras_gen.data.judge_colour` of each sample, against the prompt's colour;
- FID: the shipped extractor on the luminance of all seen-pair samples against the luminance of
  the data's test images (or of its first training images where it has no test split);
- steps trained in the budget.

    python benchmarks/text_quality.py --minutes 10 --families dcgan,diffusion
    python benchmarks/text_quality.py --minutes 3 --dataset fashion_mnist_10k_captions \\
        --variant-json '{"name": "dcgan-projection", "family": "dcgan",
                         "model": {"text_discriminator": "projection"}}'

Every family is built as `Family(image_shape, text=True, seed=...)` with its constructor's
defaults (plus a variant's "model" options), compiled with `compile()`, given `model.adapt(data)`
(not counted in the budget), and trained with `fit` on batches of its `default_batch_size`. The
budget counts from the first call of `fit` (tracing included). Variants run one after another in
this process, so they do not share the CPU. The prompts are phrased "a red sneaker" (template 0).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA = "fashion_mnist_captions:/usr/share/datasets/fashion-mnist"


def prompt_pairs():
    """(seen, unseen): lists of (class, colour) index pairs, one per class each. Seen pairs are
    the next colour after the class's unseen one (never an unseen pair)."""
    from keras_gen import data

    colours, nouns = data.CAPTION_COLOURS, data.CAPTION_CLASS_NOUNS
    unseen = [(nouns.index(n), colours.index(c)) for n, c in data.UNSEEN_CAPTION_PAIRS]
    seen = []
    for c, colour in unseen:
        k = 1
        while data.is_unseen_pair([c], [(colour + k) % len(colours)])[0]:
            k += 1
        seen.append((c, (colour + k) % len(colours)))
    return seen, unseen


def train(variant, args):
    """Trains one variant for the budget; returns (model, steps, seconds)."""
    import keras_gen as kg

    family = kg.families.get(variant["family"])
    info = kg.data.info(args.dataset, text=True)
    model = family.model(info.image_shape, text=True, seed=args.seed, **variant.get("model", {}))
    model.compile()
    batch = model.default_batch_size * model.batches_per_step
    data = kg.data.load(args.dataset, text=True, batch_size=batch, image_range=model.data_range,
                        seed=args.seed, drop_remainder=True)
    model.adapt(data)

    budget = kg.callbacks.TrainingBudget(**({"steps": args.steps} if args.steps
                                            else {"seconds": args.minutes * 60}))
    model.fit(data, epochs=100_000, verbose=0, callbacks=[budget])
    return model, budget.steps, budget.used_seconds


def judge(model, args, classifier, reference):
    """{seen_class, seen_colour, unseen_class, unseen_colour, fid} of `model`'s samples."""
    import numpy as np

    import keras_gen as kg

    n = args.samples_per_prompt
    out, seen_samples = {}, []
    for kind, pairs in zip(("seen", "unseen"), prompt_pairs()):
        class_ok, colour_ok = [], []
        for i, (c, colour) in enumerate(pairs):
            prompt = kg.data.caption(c, colour)
            samples = model.generate(prompts=[prompt] * n, seed=args.seed + 1000 + i)
            luminance = kg.data.garment_luminance(samples)
            predicted = np.argmax(classifier.predict(luminance, batch_size=500, verbose=0), -1)
            class_ok.append(np.mean(predicted == c))
            colour_ok.append(np.mean(kg.data.judge_colour(samples) == colour))
            if kind == "seen":
                seen_samples.append(luminance)
        out[f"{kind}_class"] = float(np.mean(class_ok))
        out[f"{kind}_colour"] = float(np.mean(colour_ok))
    samples = np.concatenate(seen_samples)
    out["fid"] = float(kg.metrics.fid(samples, reference[: max(len(samples), 2)], "fashion_mnist",
                                      num_samples=len(samples)))
    return out


def reference_luminance(args, count):
    """Luminance of the data's test images (or first training images), [0, 1], (count, 28, 28, 1)."""
    import numpy as np

    import keras_gen as kg

    info = kg.data.info(args.dataset, text=True)
    split = "test" if "test" in info.splits else "train"
    images = []
    for batch in kg.data.load(args.dataset, split=split, text=True, batch_size=500,
                              image_range="unit", shuffle=False):
        images.append(np.asarray(batch[0]))
        if sum(len(x) for x in images) >= count:
            break
    return kg.data.garment_luminance(np.concatenate(images)[:count]), split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per variant")
    parser.add_argument("--steps", type=int, default=None, help="train this many steps instead")
    parser.add_argument("--families", default="dcgan,diffusion",
                        help="comma-separated families, each built with text=True")
    parser.add_argument("--variant-json", action="append", default=[],
                        help='extra variant: {"name": ..., "family": ..., "model": {...}}')
    parser.add_argument("--dataset", default=DATA)
    parser.add_argument("--samples-per-prompt", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    import keras

    import keras_gen as kg

    variants = [{"name": f, "family": f} for f in args.families.split(",") if f]
    variants += [json.loads(v) for v in args.variant_json]
    # Families that list the shared text option (keras_gen.text.TEXT_OPTION) take text=True.
    known = [f.name for f in kg.families.all_families() if kg.text.TEXT_OPTION in f.options]
    for v in variants:
        if v["family"] not in known:
            print(f"skipping {v['name']}: {v['family']!r} has no text mode in this checkout "
                  f"(text families: {', '.join(known)})", flush=True)
    variants = [v for v in variants if v["family"] in known]
    classifier = kg.metrics._classifier("fashion_mnist")
    pairs = prompt_pairs()
    reference, split = reference_luminance(args, len(pairs[0]) * args.samples_per_prompt)
    load = os.getloadavg()[0]
    print(f"data {args.dataset}; budget {args.steps or args.minutes} "
          f"{'steps' if args.steps else 'minutes'} per variant; {args.samples_per_prompt} samples "
          f"per prompt, {len(pairs[0])} seen and {len(pairs[1])} unseen prompts; FID on luminance "
          f"vs {len(reference)} {split} images; load average {load:.1f} on {os.cpu_count()} CPUs",
          flush=True)
    rows = []
    for variant in variants:
        print(f"training {variant['name']} ...", flush=True)
        model, steps, seconds = train(variant, args)
        row = {"name": variant["name"], "steps": steps, "seconds": seconds,
               **judge(model, args, classifier, reference)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        keras.backend.clear_session()
    header = ("variant", "steps", "seen class", "seen colour", "unseen class", "unseen colour", "FID")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['name']} | {r['steps']} | {r['seen_class']:.1%} | {r['seen_colour']:.1%} | "
              f"{r['unseen_class']:.1%} | {r['unseen_colour']:.1%} | {r['fid']:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "load": load, "rows": rows},
                                             indent=1))
    return rows


if __name__ == "__main__":
    main()

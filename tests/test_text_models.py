"""What every text-conditioned family shares (keras_gen.text.TextConditioned), run on each family
that takes the text option: exact resume after a kill under `keras_gen.training.fit`, and the
errors for prompts a model cannot read (in Python and through `keras-gen sample`)."""

import contextlib
import io

import numpy as np
import pytest

from keras_gen import cli, data, families as registry, text, training
import families

TEXT_FAMILIES = [f.name for f in registry.all_families() if text.TEXT_OPTION in f.options]
CAPTIONS = [data.caption(c, k, t) for c, k, t in [(7, 0, 0), (8, 2, 1), (4, 1, 2), (3, 7, 3)]]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """32 random grey 8x8 images (families.build's shape) with their captions."""
    return families.captioned_npz(tmp_path_factory.mktemp("data") / "captions.npz", CAPTIONS,
                                  image_shape=(8, 8, 1))


def load(npz, family, epoch=0, **kwargs):
    """Epoch `epoch` of the captions, shuffled by its own seed (`training.fit`'s data)."""
    return data.load(f"npz:{npz}", text=True, batch_size=8, image_range=families.image_range(family),
                     seed=training.epoch_seed(5, epoch), **kwargs)


def test_both_text_families_are_covered():
    assert {"dcgan", "diffusion"} <= set(TEXT_FAMILIES)


@pytest.mark.slow  # three trainings of 8 steps, traced anew each: 45 s (dcgan), 78 s (diffusion) loaded
@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_resume_after_a_kill_is_exact(family, npz, tmp_path):
    """4 steps an epoch, checkpoints every 3 steps: killed at step 7, resumed from step 6 (epoch
    2, after its 2nd batch). The vocabulary is the model's config, not its weights: the resumed
    model is built and adapted as the first was (what `keras-gen train --resume` does from the
    run's config)."""

    def build_compiled():
        model = families.build(family, text=True).adapt(load(npz, family, shuffle=False))
        model.compile()
        return model

    families.assert_resume_is_exact(
        build_compiled, lambda epoch: load(npz, family, epoch), tmp_path, checkpoint_every=3, kill_at=7)


@pytest.fixture(scope="module", params=TEXT_FAMILIES)
def adapted(request, npz):
    return families.build(request.param, text=True).adapt(load(npz, request.param, shuffle=False))


def test_prompts_without_words_fail_naming_the_prompt(adapted):
    with pytest.raises(ValueError, match=r"prompts\[1\] = '!!! \.\.\.' has no words .* at least "
                                         r"one word, e\.g\. 'a"):
        adapted.generate(prompts=["a red sneaker", "!!! ..."], seed=0)
    with pytest.raises(ValueError, match=r"prompts\[0\] = '' has no words"):
        adapted.generate(prompts=[""], seed=0)
    with pytest.raises(ValueError, match=r"prompts must be strings.*prompts\[1\] is a int"):
        adapted.generate(prompts=["a red sneaker", 3], seed=0)


def test_prompts_longer_than_the_model_reads_fail(adapted):
    length = adapted.sequence_length  # 8
    fits = " ".join(["red"] * length)
    images = adapted.generate(prompts=[fits], seed=0)  # exactly sequence_length words: fine
    assert images.shape == (1, 8, 8, 1)
    with pytest.raises(ValueError, match=rf"prompts\[0\] = .* has {length + 1} words; this model "
                                         rf"reads at most sequence_length={length}"):
        adapted.generate(prompts=[fits + " sneaker"], seed=0)
    # Punctuation is not a word: the same prompt with commas still fits.
    np.testing.assert_array_equal(adapted.generate(prompts=[fits.replace(" ", ", ")], seed=0), images)


def test_the_command_says_what_is_wrong_with_a_prompt(adapted, tmp_path):
    path = tmp_path / "m.keras"
    adapted.save(path)
    for prompt, message in [("...", "has no words"), ("red " * 9, "has 9 words")]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(["sample", "--model", str(path), "--prompt", prompt, "-n", "2",
                             "--out", str(tmp_path / "a.npy")])
        assert code == 2 and message in err.getvalue(), err.getvalue()
        assert not (tmp_path / "a.npy").exists()

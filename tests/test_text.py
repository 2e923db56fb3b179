"""keras_gen.text: the tokenizer's vocabulary, ids and warnings; the same ids as the pure-Python
export.tokenize; the encoder's masking and pooling; `.keras` and LiteRT round trips."""

import collections
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
from export.tokenize import words
from keras_gen import text

CORPUS = [
    "a red sneaker", "a sneaker in red", "red sneaker", "a photo of a blue bag",
    "an ankle boot in blue", "a red bag", "naïve Éclair", "t-shirt/top", "it’s red",
]
TRICKY = [
    "A RED, red... Sneaker!!",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\r\x0bvt\x0cff",
    "unknown zebra words in red",
    "a red sneaker " * 10,  # longer than sequence_length
    "",
    "!!! ??? ...",
    "T-Shirt/Top",
    "NAÏVE ÉCLAIR naïve éclair",  # only A-Z are lower-cased
    "non\u00a0breaking space",  # not ASCII whitespace: one word
    "it’s red",  # not ASCII punctuation: kept
    "bag\x1cred",  # Python's str.split() would split here; the rule does not
]


def adapted(max_tokens=64, sequence_length=8):
    return text.TextTokenizer(max_tokens, sequence_length).adapt(CORPUS)


def test_adapt_ranks_words_by_frequency_then_alphabet_and_respects_max_tokens():
    vocab = adapted().vocabulary
    counts = collections.Counter(w for caption in CORPUS for w in words(caption))
    assert set(vocab) == set(counts)
    assert vocab == sorted(counts, key=lambda w: (-counts[w], w))
    assert counts[vocab[0]] > counts[vocab[-1]]  # the order is not alphabetical alone
    small = text.TextTokenizer(max_tokens=5, sequence_length=4).adapt(CORPUS)
    assert small.vocabulary == vocab[:3]


def test_adapt_takes_the_dataset_fit_takes():
    images = np.zeros((len(CORPUS), 4, 4, 1), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, CORPUS)).batch(4)
    assert text.TextTokenizer(64, 8).adapt(ds).vocabulary == adapted().vocabulary
    captions_only = tf.data.Dataset.from_tensor_slices(CORPUS)  # unbatched strings
    assert text.TextTokenizer(64, 8).adapt(captions_only).vocabulary == adapted().vocabulary
    with pytest.raises(ValueError, match="captions second"):
        text.TextTokenizer(64, 8).adapt(tf.data.Dataset.from_tensor_slices((images, images)))
    with pytest.raises(ValueError, match="no words"):
        text.TextTokenizer(64, 8).adapt(["", "!!!"])


def test_ids_pad_oov_and_truncation():
    tokenizer = adapted(sequence_length=4)
    vocab = tokenizer.vocabulary
    ids = tokenizer(tf.constant(["A red, SNEAKER!", "zebra red", "a red sneaker in blue bag"]))
    assert ids.dtype == tf.int32 and ids.shape == (3, 4)
    word = {w: vocab.index(w) + text.FIRST_WORD_ID for w in vocab}
    np.testing.assert_array_equal(ids[0], [word["a"], word["red"], word["sneaker"], text.PAD_ID])
    np.testing.assert_array_equal(ids[1], [text.OOV_ID, word["red"], 0, 0])
    np.testing.assert_array_equal(ids[2], [word["a"], word["red"], word["sneaker"], word["in"]])


def test_unknown_words_warn_and_are_named():
    tokenizer = adapted()
    with pytest.warns(UserWarning, match=r"'purple'.*'zebra'|'zebra'.*'purple'") as record:
        ids = tokenizer.encode(["a purple zebra", "a red sneaker"])
    assert ids.dtype == np.int32 and ids.shape == (2, 8)
    assert "red" not in str(record[0].message) and "sneaker" not in str(record[0].message)
    assert ids[0, 1] == ids[0, 2] == text.OOV_ID
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        known = tokenizer.encode("A RED sneaker!")  # known words, any case: no warning
    np.testing.assert_array_equal(known, ids[1:])
    with pytest.raises(ValueError, match="strings"):
        tokenizer.encode([3])


def test_tokenizer_equals_the_python_reference(tmp_path):
    tokenizer = adapted(sequence_length=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_ids = tokenizer.encode(TRICKY)
    reference = export.tokenize(TRICKY, tokenizer.vocabulary, tokenizer.sequence_length)
    np.testing.assert_array_equal(keras_ids, np.array(reference, np.int32))
    # The non-ASCII and unsplit cases matter: they are in the vocabulary, so a rule that
    # differed would give other ids, not the same OOV.
    assert {"naïve", "Éclair", "it’s", "tshirttop"} <= set(tokenizer.vocabulary)
    rule = export.write_tokenizer(tmp_path / "tokenizer.json", tokenizer.vocabulary, 6)
    assert export.read_tokenizer(tmp_path / "tokenizer.json") == rule
    assert export.tokenize(TRICKY[0], rule["vocabulary"], rule["sequence_length"]) == list(keras_ids[0])


def test_vocabulary_checks():
    with pytest.raises(ValueError, match="lower-case"):
        text.TextTokenizer(vocabulary=["Red"])
    with pytest.raises(ValueError, match="repeat"):
        text.TextTokenizer(vocabulary=["red", "red"])
    with pytest.raises(ValueError, match="max_tokens >= 4"):
        text.TextTokenizer(max_tokens=3, vocabulary=["red", "bag"])
    with pytest.raises(ValueError, match="sequence_length"):
        text.TextEncoder(10, 8)(np.zeros((2, 5), np.int32))


def tiny_encoder(tokenizer, num_layers=1):
    keras.utils.set_random_seed(0)
    return text.TextEncoder(tokenizer.max_tokens, tokenizer.sequence_length, dim=16,
                            num_layers=num_layers, num_heads=2)


def test_pooled_is_the_mean_over_words_and_padding_is_masked():
    tokenizer = adapted()
    encoder = tiny_encoder(tokenizer, num_layers=2)
    ids = tokenizer.encode(["a red sneaker", "bag", ""])
    states, pooled = (np.asarray(t) for t in encoder(ids))
    mask = ids != 0
    for i in range(2):
        np.testing.assert_allclose(pooled[i], states[i][mask[i]].mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(pooled[2], 0.0)
    # Padding is never attended to: a different embedding of the padding id leaves the states
    # of the words unchanged.
    table = encoder.token_embedding.embeddings
    table.assign(tf.tensor_scatter_nd_update(table, [[0]], tf.random.normal((1, 16))))
    states2, pooled2 = (np.asarray(t) for t in encoder(ids))
    np.testing.assert_allclose(states2[:2][mask[:2]], states[:2][mask[:2]], atol=1e-5)
    np.testing.assert_allclose(pooled2[:2], pooled[:2], atol=1e-5)
    assert not np.allclose(states2[0][~mask[0]], states[0][~mask[0]])


def test_vocabulary_and_encoder_survive_keras_file(tmp_path):
    tokenizer = adapted()
    encoder = tiny_encoder(tokenizer)
    captions = keras.Input((), dtype="string")
    states, pooled = encoder(tokenizer(captions))
    model = keras.Model(captions, [states, pooled])
    prompts = tf.constant(["a red sneaker", "an ankle boot in blue", "zebra"])
    before = model(prompts)
    model.save(tmp_path / "text.keras")
    loaded = keras.models.load_model(tmp_path / "text.keras")
    after = loaded(prompts)
    for a, b in zip(before, after):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    loaded_tokenizer = next(l for l in loaded.layers if isinstance(l, text.TextTokenizer))
    assert loaded_tokenizer.vocabulary == tokenizer.vocabulary
    assert loaded_tokenizer.sequence_length == tokenizer.sequence_length


def test_encoder_converts_to_litert_and_matches_keras(tmp_path):
    """Through a SavedModel, as export/ converts (the weights tracked on a tf.Module), with a
    batch of any size, builtin ops only."""
    from ai_edge_litert.interpreter import Interpreter

    tokenizer = adapted()
    encoder = tiny_encoder(tokenizer, num_layers=2)
    ids = np.array(export.tokenize(["a red sneaker", "a photo of a blue bag", "", "zebra"],
                                   tokenizer.vocabulary, tokenizer.sequence_length), np.int32)
    expected = [np.asarray(t) for t in encoder(ids)]
    root = tf.Module()
    root.encode = tf.function(
        lambda token_ids: dict(zip(("states", "pooled"), encoder(token_ids))),
        input_signature=[tf.TensorSpec((None, tokenizer.sequence_length), tf.int32, "token_ids")],
    )
    root.weights = list(root.encode.get_concrete_function().variables)
    tf.saved_model.save(root, str(tmp_path / "sm"), signatures={"encode": root.encode})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner("encode")
    got = runner(token_ids=ids)
    for name, want in zip(("states", "pooled"), expected):
        assert got[name].shape == want.shape
        np.testing.assert_allclose(got[name], want, atol=1e-4)


def test_encoder_is_finite_under_mixed_float16():
    """The padding mask's -1e9 is added in float32: in float16 it is -inf, and 0 * inf a NaN."""
    import keras
    from keras_gen import text

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        encoder = text.TextEncoder(vocabulary_size=20, sequence_length=6, dim=8, num_heads=2, seed=0)
        ids = np.array([[2, 3, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)
        states, pooled = encoder(ids)
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.isfinite(np.asarray(states, np.float32)).all()
    assert np.isfinite(np.asarray(pooled, np.float32)).all()

"""The tokenisation rule of keras-gen's text-conditioned models, in plain Python: the reference an
app copies to turn a prompt into the int32 token ids an exported generator takes.

    rule = read_tokenizer("exported/tokenizer.json")
    ids = tokenize("A red sneaker!", rule["vocabulary"], rule["sequence_length"])

The rule (the same as `keras_gen.text.TextTokenizer`; a test holds them to the same ids):
  1. ASCII letters A-Z are lower-cased (other characters are left alone);
  2. the 32 ASCII punctuation characters !"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ are removed;
  3. the text is split on runs of ASCII whitespace (space, tab, newline, \\v, \\f, \\r);
  4. words map to ids: 0 is padding, 1 is out-of-vocabulary, vocabulary[k] is k + 2;
  5. the ids are cut, or padded with 0 at the end, to `sequence_length`.

No TensorFlow here: this file imports only the standard library.
"""

import json
import re
import string

PAD_ID = 0
OOV_ID = 1
FIRST_WORD_ID = 2
PUNCTUATION = string.punctuation
WHITESPACE = " \t\n\x0b\x0c\r"
FORMAT = "keras_gen.tokenizer"

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", PUNCTUATION)
_SPLIT = re.compile("[" + re.escape(WHITESPACE) + "]+")


def words(text):
    """The words of `text` under the rule (steps 1-3)."""
    return [w for w in _SPLIT.split(text.translate(_LOWER).translate(_STRIP)) if w]


def tokenize(text, vocabulary, sequence_length, pad_id=PAD_ID, oov_id=OOV_ID,
             first_word_id=FIRST_WORD_ID):
    """Token ids of `text` (a string: one list of `sequence_length` ints) or of a list of
    strings (a list of such lists). `vocabulary`: the words in id order from `first_word_id`
    (a list), or a {word: id} dict."""
    if isinstance(vocabulary, dict):
        ids = vocabulary
    else:
        ids = {w: i + first_word_id for i, w in enumerate(vocabulary)}
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) \
            or sequence_length <= 0:
        raise ValueError(f"sequence_length must be a positive integer; got {sequence_length!r}.")

    def one(t):
        if not isinstance(t, str):
            raise ValueError(f"text must be a string or a list of strings; got {type(t).__name__}.")
        row = [ids.get(w, oov_id) for w in words(t)][:sequence_length]
        return row + [pad_id] * (sequence_length - len(row))

    if isinstance(text, str):
        return one(text)
    return [one(t) for t in text]


def write_tokenizer(path, vocabulary, sequence_length):
    """Writes the vocabulary and the rule as JSON to `path` (what an app reads next to the
    `.tflite`); returns the dict written."""
    rule = {
        "format": FORMAT,
        "version": 1,
        "sequence_length": int(sequence_length),
        "pad_id": PAD_ID,
        "oov_id": OOV_ID,
        "first_word_id": FIRST_WORD_ID,
        "lowercase": "ASCII A-Z only",
        "strip_characters": PUNCTUATION,
        "split_on": "runs of ASCII whitespace: " + repr(WHITESPACE),
        "truncate_and_pad": "at the end, with pad_id",
        "vocabulary": list(vocabulary),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rule, f, indent=1, ensure_ascii=False)
    return rule


def read_tokenizer(path):
    """The dict `write_tokenizer` wrote; checks that it is one and that its rule is this one."""
    with open(path, encoding="utf-8") as f:
        rule = json.load(f)
    if not isinstance(rule, dict) or rule.get("format") != FORMAT:
        raise ValueError(f"{path} is not a keras-gen tokenizer file (format {FORMAT!r}).")
    expected = {"pad_id": PAD_ID, "oov_id": OOV_ID, "first_word_id": FIRST_WORD_ID,
                "strip_characters": PUNCTUATION}
    differ = {k: rule.get(k) for k, v in expected.items() if rule.get(k) != v}
    if differ:
        raise ValueError(
            f"{path} uses another rule than this tokenize ({differ}; this one: {expected}); "
            "read it with the keras-gen version that wrote it."
        )
    return rule

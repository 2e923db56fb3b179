"""Export trained keras-gen generators to SavedModel and TFLite (LiteRT), and check that the
exported files compute what the Keras model computes.

    import export
    export.saved_model(gan, "exported/saved_model")
    export.tflite("exported/saved_model", "exported/tflite", quantize="float16")
    export.tflite(gan, "exported/tflite", quantize="int8",
                  representative_data=export.prior_samples(gan, n=512))
    export.tflite(pix2pix, "exported/p2p", quantize="int8",
                  representative_data=inputs)  # real input images in [0, 1]: a translator's
    print(export.validate(gan, "exported").table())
    ids = export.tokenize("a red sneaker", vocabulary, sequence_length)  # text models' input

Command line: `python -m export --model runs/x/model.keras --out exported/` (also
`keras-gen export ...`).

This package imports the library; the library never imports it.
"""

import importlib

# Imported on first use, so `keras-gen --help` (which loads export.cli through its entry point)
# does not pay for TensorFlow.
_PUBLIC = {
    "ExportError": "export.signatures",
    "QUANTIZE_MODES": "export.to_tflite",
    "ValidationError": "export.validation",
    "ValidationReport": "export.validation",
    "prior_samples": "export.to_tflite",
    "read_metadata": "export.to_saved_model",
    "saved_model": "export.to_saved_model",
    "tflite": "export.to_tflite",
    "validate": "export.validation",
}
# Pure Python and imported now: `export.tokenize` is then the function, never the submodule the
# import system would otherwise bind to that name.
from export.tokenize import read_tokenizer, tokenize, write_tokenizer  # noqa: E402

__all__ = sorted(list(_PUBLIC) + ["read_tokenizer", "tokenize", "write_tokenizer"])


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PUBLIC))

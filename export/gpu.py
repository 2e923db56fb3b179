"""Will a `.tflite` signature run on the LiteRT GPU delegate? `report(content)` answers per
signature, naming the ops that would stay on the CPU.

The ops come from `tf.lite.experimental.Analyzer.analyze(model_content=...,
gpu_compatibility=True)`, whose printed model dump lists every subgraph (a signature's own and
the bodies of its WHILE/IF ops) with each op's tensors. Since TF 2.19 the Analyzer's own GPU
check is a stub that calls every model compatible (tensorflow/tensorflow#77042), so the op
rules below are applied here: the GPU delegate's op table and the constraints that matter for
keras-gen graphs, from `tensorflow/lite/tools/versioning/gpu_compatibility.cc`. Warnings the
Analyzer prints itself (older runtimes) are added. A "yes" means every op of the signature is
in the delegate's table, not that it runs well there; a "no" names the ops that would stay on
the CPU (the delegate then runs the rest in pieces). Graphs exported with a free batch size
often compute shapes at run time (SHAPE, STRIDED_SLICE, a RESHAPE to the result), which the
delegate leaves to the CPU.
"""

from __future__ import annotations

import contextlib
import io
import re

# Builtin ops the GPU delegate implements (tensorflow/lite/tools/versioning/gpu_compatibility.cc).
SUPPORTED = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU
EMBEDDING_LOOKUP EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM
MAX_POOL_2D MEAN MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE
REDUCE_MAX REDUCE_MIN REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT
SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE
TRANSPOSE_CONV
""".split())
_FLOAT = ("FLOAT32", "FLOAT16")

_SUBGRAPH = re.compile(r"^Subgraph#(\d+) ")
_OP = re.compile(r"^  Op#\d+ (\w+)\((.*)\) -> \[(.*)\]")
_TENSOR = re.compile(r"^  T#([\d_]+)\(.*?\) shape(?:_signature)?:\[([^\]]*)\], type:(\w+)")
_TENSOR_REF = re.compile(r"T#([\d_]+)")
_CALLED = re.compile(r"Subgraph#(\d+)")
_SIGNATURE = re.compile(r"^Signature#\d+ key: '(.*)'")
_SIGNATURE_SUBGRAPH = re.compile(r"^- Subgraph: Subgraph#(\d+)")
_ANALYZER_WARNING = re.compile(r"GPU COMPATIBILITY WARNING: (?!Subgraph#)(.*)")


def analyzer_dump(content):
    """The Analyzer's printed report of a model (it prints instead of returning)."""
    import tensorflow as tf

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_content=content, gpu_compatibility=True)
    return out.getvalue()


def _parse(dump):
    """{subgraph: [(op, inputs, outputs, called subgraphs, analyzer warning)]}, {tensor: (rank,
    type)}, {signature: subgraph}."""
    ops, tensors, signatures = {}, {}, {}
    current, signature = None, None
    for line in dump.splitlines():
        if m := _SUBGRAPH.match(line):
            current = int(m.group(1))
            ops.setdefault(current, [])
        elif m := _OP.match(line):
            called = [int(k) for k in _CALLED.findall(m.group(2))]
            inputs = _TENSOR_REF.findall(m.group(2).split("Cond:")[0].split("Then:")[0])
            ops[current].append([m.group(1), inputs, _TENSOR_REF.findall(m.group(3)), called, None])
        elif (m := _ANALYZER_WARNING.search(line)) and current in ops and ops[current]:
            ops[current][-1][4] = m.group(1).strip()
        elif m := _TENSOR.match(line):
            dims = [d for d in m.group(2).split(",") if d.strip()]
            tensors[m.group(1)] = (len(dims), m.group(3), " RO " in line)  # RO: a constant
        elif m := _SIGNATURE.match(line):
            signature = m.group(1)
        elif (m := _SIGNATURE_SUBGRAPH.match(line)) and signature is not None:
            signatures[signature] = int(m.group(1))
            signature = None
    if not signatures and 0 in ops:  # a model converted without signature defs
        signatures["serving_default"] = 0
    return ops, tensors, signatures


def _rule(op, inputs, outputs, tensors):
    """Why the GPU delegate cannot run this op, or None."""
    if op not in SUPPORTED:
        return "not implemented by the GPU delegate"
    spec = lambda names: [tensors.get(t, (0, "?", False)) for t in names]  # noqa: E731
    ins, outs = spec(inputs), spec(outputs)
    if op == "RESHAPE" and len(ins) > 1 and not ins[1][2]:
        return "RESHAPE to a shape computed at run time (e.g. from a dynamic batch size)"
    if op in ("SLICE", "STRIDED_SLICE") and ins and ins[0][0] not in (3, 4):
        return f"{op} on a {ins[0][0]}-D tensor (3-D or 4-D only)"
    if op == "CAST" and ins and outs:
        allowed = {("BOOL", "FLOAT32"), ("BOOL", "FLOAT16"), ("FLOAT32", "BOOL"), ("FLOAT16", "BOOL")}
        allowed |= {(a, b) for a in ("FLOAT32", "INT32") for b in ("FLOAT32", "INT32")}
        if (ins[0][1], outs[0][1]) not in allowed:
            return f"CAST {ins[0][1]} -> {outs[0][1]}"
    if op == "GATHER" and len(ins) > 1 and (ins[0][1] == "INT32" or ins[1][0] != 1):
        return "GATHER of int32 values or with indices that are not 1-D"
    if any(rank > 4 for rank, _, _ in ins + outs):
        return f"{op} on a tensor of rank > 4"
    return None


def analyze(content):
    """(every op name in the model, sorted; {signature: {"compatible": bool, "blocking_ops":
    sorted op names, "reasons": {op: reason}}}) for a .tflite model's bytes. A signature's ops
    are those of its own subgraph and of every subgraph its WHILE / IF ops call."""
    ops, tensors, signatures = _parse(analyzer_dump(content))
    report = {}
    for name, root in signatures.items():
        seen, stack, reasons = set(), [root], {}
        while stack:
            subgraph = stack.pop()
            if subgraph in seen:
                continue
            seen.add(subgraph)
            for op, inputs, outputs, called, warning in ops.get(subgraph, []):
                stack.extend(called)
                reason = warning or _rule(op, inputs, outputs, tensors)
                if reason is not None:
                    reasons.setdefault(op, reason)
        report[name] = {
            "compatible": not reasons,
            "blocking_ops": sorted(reasons),
            "reasons": dict(sorted(reasons.items())),
        }
    every_op = sorted({op[0] for subgraph in ops.values() for op in subgraph})
    return every_op, report


def report(content):
    """{signature: {"compatible", "blocking_ops", "reasons"}} (see `analyze`)."""
    return analyze(content)[1]


def summary(entry):
    """One table cell: "yes", or "no: OP, OP"."""
    if entry is None:
        return "-"
    return "yes" if entry["compatible"] else "no: " + ", ".join(entry["blocking_ops"])

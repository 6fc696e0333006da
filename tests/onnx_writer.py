"""A minimal ONNX writer for toy test models: protobuf fields of onnx.proto (ModelProto, GraphProto,
NodeProto, TensorProto, ValueInfoProto) written by hand, since torch.onnx.export needs the `onnx`
package, which the project does not install. Imported by tests as `onnx_writer` (pytest's
`pythonpath` puts tests/ on sys.path; a `tests` package from another wheel shadows ours).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLOAT, INT32, INT64 = 1, 6, 7  # TensorProto.DataType


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def message(*fields) -> bytes:
    """(field number, value) pairs -> a protobuf message: ints as varints, str/bytes length-delimited."""
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += _varint(number << 3) + _varint(value)
        else:
            value = value.encode() if isinstance(value, str) else value
            out += _varint(number << 3 | 2) + _varint(len(value)) + value
    return out


def value_info(name: str, elem_type: int, dims: list) -> bytes:
    """A graph input or output: dims are ints or symbolic names ("T")."""
    shape = message(*[(1, message((1, d) if isinstance(d, int) else (2, d))) for d in dims])  # TensorShapeProto
    return message((1, name), (2, message((1, message((1, elem_type), (2, shape))))))  # ValueInfoProto


def node(op: str, inputs: list[str], output: str, **ints) -> bytes:
    """A NodeProto; keyword attributes are INT (an int) or INTS (a list of ints)."""
    attrs = [message((1, k), *[(8, i) for i in v], (20, 7)) if isinstance(v, list) else
             message((1, k), (3, v), (20, 2)) for k, v in ints.items()]  # AttributeProto: INTS = 7, INT = 2
    return message(*[(1, i) for i in inputs], (2, output), (4, op), *[(5, a) for a in attrs])


def float_tensor(name: str, array: np.ndarray) -> bytes:
    """An initializer (TensorProto) holding `array` as little-endian float32."""
    array = np.asarray(array, dtype="<f4")
    return message(*[(1, d) for d in array.shape], (2, FLOAT), (8, name), (9, array.tobytes()))


def write_model(path: str | Path, name: str, nodes: list[bytes], inputs: list[bytes], outputs: list[bytes],
                initializers: list[bytes] = ()) -> None:
    """Writes a ModelProto (ir_version 8, opset 17) with one graph to `path`."""
    graph = message(*[(1, n) for n in nodes], (2, name), *[(5, w) for w in initializers],
                    *[(11, i) for i in inputs], *[(12, o) for o in outputs])
    Path(path).write_bytes(message((1, 8), (8, message((2, 17))), (7, graph)))


def toy_s3_model(path, subsample: int, keep_dims: bool, n_mels: int = 128, seed: int = 0, codes: int = 16) -> None:
    """A model with the signature of CosyVoice's speech_tokenizer_v1/v2.onnx: feats (1, n_mels, T)
    -> log2(subsample) k3-s2-p1 convolutions -> argmax over `codes` channels -> ids (1, ceil(T /
    subsample)) int64, or (1, 1, ...) with keep_dims; feats_length (1,) int32 unused."""
    rng = np.random.default_rng(seed)
    nodes, weights, x = [], [], "feats"
    for layer in range(int(np.log2(subsample))):
        w = rng.standard_normal((codes, n_mels if layer == 0 else codes, 3))
        weights.append(float_tensor(f"w{layer}", w))
        nodes.append(node("Conv", [x, f"w{layer}"], f"h{layer}", kernel_shape=[3], strides=[2], pads=[1, 1]))
        x = f"h{layer}"
    nodes.append(node("ArgMax", [x], "indices", axis=1, keepdims=int(keep_dims)))
    out_dims = [1, 1, "T_tok"] if keep_dims else [1, "T_tok"]
    write_model(path, "toy_s3", nodes, initializers=weights,
                inputs=[value_info("feats", FLOAT, [1, n_mels, "T"]), value_info("feats_length", INT32, [1])],
                outputs=[value_info("indices", INT64, out_dims)])


def toy_campplus(path, seed: int = 0, dim: int = 192) -> np.ndarray:
    """A model with the signature of CosyVoice's campplus.onnx: feats (1, T, 80) -> mean over time of
    |feats| (1, 80) -> @ W -> (1, dim); returns W (80, dim)."""
    weight = np.random.default_rng(seed).standard_normal((80, dim)).astype(np.float32)
    nodes = [node("Abs", ["x"], "magnitude"), node("ReduceMean", ["magnitude"], "pooled", axes=[1], keepdims=0),
             node("MatMul", ["pooled", "w"], "embedding")]
    write_model(path, "toy_campplus", nodes, initializers=[float_tensor("w", weight)],
                inputs=[value_info("x", FLOAT, [1, "T", 80])], outputs=[value_info("embedding", FLOAT, [1, dim])])
    return weight

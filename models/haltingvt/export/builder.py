"""A small ONNX graph builder: every call adds one node and returns its output name(s).

We build the graph by hand rather than tracing: the halting loop has data-dependent token counts
(TopK with a runtime K, If per layer), which tracing exporters bake into constants.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = np.iinfo(np.int64).max


class Builder:
    """Collects nodes; initializers (weights and constants) are shared with child builders so that
    If-branches can reference them from the outer scope."""

    def __init__(self, prefix: str = "", parent: "Builder | None" = None) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.prefix = prefix
        self._root = parent._root if parent else self
        if parent is None:
            self.initializers: list[onnx.TensorProto] = []
            self._count = 0
            self._consts: dict[tuple, str] = {}

    def child(self, prefix: str) -> "Builder":
        return Builder(prefix, parent=self)

    def fresh(self, hint: str) -> str:
        self._root._count += 1
        return f"{self.prefix}{hint}_{self._root._count}"

    def weight(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        # asarray, not ascontiguousarray: that one makes a scalar shape (1,), and Range's bounds and a
        # Gather index that drops its axis must be rank 0.
        self._root.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """A small constant, deduplicated by value."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        root = self._root
        if key not in root._consts:
            root._consts[key] = self.weight(array, "const")
        return root._consts[key]

    def op(self, op_type: str, *inputs: str, hint: str | None = None, outputs: int = 1, out: str | None = None, **attrs):
        """Adds one node; `out` names its (single) output exactly, for graph outputs."""
        outs = [out] if out else [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs[0] if outputs == 1 else outs

    # ---- composite helpers -------------------------------------------------------------------

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, hint: str) -> str:
        """x @ W^T + b with W (out, in) as in torch."""
        y = self.op("MatMul", x, self.weight(weight.T, f"{hint}.weight_t"), hint=hint)
        return self.op("Add", y, self.weight(bias, f"{hint}.bias"), hint=hint)

    def layer_norm(self, x: str, weight: np.ndarray, bias: np.ndarray, eps: float, hint: str) -> str:
        return self.op("LayerNormalization", x, self.weight(weight, f"{hint}.weight"), self.weight(bias, f"{hint}.bias"),
                       axis=-1, epsilon=eps, hint=hint)

    def gelu(self, x: str) -> str:
        """Exact GELU 0.5 x (1 + erf(x / sqrt 2)); ONNX Runtime fuses this pattern into one Gelu kernel."""
        erf = self.op("Erf", self.op("Div", x, self.const(np.sqrt(2.0), np.float32)))
        return self.op("Mul", self.op("Mul", x, self.const(0.5, np.float32)), self.op("Add", erf, self.const(1.0, np.float32)))

    def reshape(self, x: str, shape) -> str:
        return self.op("Reshape", x, self.const(shape))

    def transpose(self, x: str, perm) -> str:
        return self.op("Transpose", x, perm=list(perm))

    def slice(self, x: str, start: int, end: int, axis: int, step: int = 1) -> str:
        if step != 1:
            return self.op("Slice", x, self.const([start]), self.const([end]), self.const([axis]), self.const([step]))
        return self.op("Slice", x, self.const([start]), self.const([end]), self.const([axis]))

    def dim(self, x: str, axis: int) -> str:
        """Size of one axis as a 1-element int64 tensor."""
        return self.slice(self.op("Shape", x), axis, axis + 1, 0)

    def first(self, x: str, axis: int) -> str:
        """Index 0 of one axis, the axis dropped: one Gather where Slice + Squeeze would be two nodes."""
        return self.op("Gather", x, self.const(0), axis=axis)

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", x, self.const(list(axes)))

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", x, self.const(list(axes)))

    def concat(self, *xs: str, axis: int) -> str:
        return self.op("Concat", *xs, axis=axis)

    def cast(self, x: str, to: int) -> str:
        return self.op("Cast", x, to=to)

    def where(self, cond: str, a: str, b: str) -> str:
        return self.op("Where", cond, a, b)

    def sum_axis(self, x_float: str, axis: int, keepdims: int = 0) -> str:
        return self.op("ReduceSum", x_float, self.const([axis]), keepdims=keepdims)

    def count_true(self, mask: str, axis: int) -> str:
        return self.sum_axis(self.cast(mask, TensorProto.FLOAT), axis)

    def full_like_dims(self, dims: str, value, dtype) -> str:
        """Tensor of shape `dims` (int64 1-D tensor) filled with `value`."""
        return self.op("ConstantOfShape", dims, value=numpy_helper.from_array(np.array([value], dtype=dtype)))

    def gather_rows(self, x: str, index: str, channels: int | None) -> str:
        """Per-sample gather along axis 1: x (B, N[, C]), index (B, M) -> (B, M[, C])."""
        if channels is None:
            return self.op("GatherElements", x, index, axis=1)
        expanded = self.op("Expand", self.unsqueeze(index, [2]),
                           self.concat(self.op("Shape", index), self.const([channels]), axis=0))  # (B, M, C)
        return self.op("GatherElements", x, expanded, axis=1)

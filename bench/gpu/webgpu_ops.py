"""Which nodes of a model graph ONNX Runtime's WebGPU provider can claim, read statically: each op
type (If bodies included) with the element type of its first input, against the WebGPU kernel
registry (onnxruntime/core/providers/webgpu/webgpu_execution_provider.cc, RegisterKernels) and its
element types (webgpu_supported_types.h: float, float16, int32, uint32; int64 and bool only where a
kernel says so). The GPU run's profile (bench/gpu/check.ts, placement) is the authority; this is the
prediction written down in docs/gpu.md.

  python bench/gpu/webgpu_ops.py models/default/model.onnx   -> a markdown table on stdout
"""

from __future__ import annotations

import collections
import sys

import onnx
from onnx import TensorProto

# ONNX-domain ops with a WebGPU kernel in RegisterKernels (ORT main, read for ORT 1.30), limited to
# the ops our graphs use plus their near relatives. Absent here, present in our graphs: TopK,
# ScatterElements, And, Max, Min, ConstantOfShape, Identity (ORT removes most Identity nodes).
WEBGPU_KERNELS = {
    "Abs", "Add", "ArgMax", "ArgMin", "Cast", "Ceil", "Clip", "Concat", "Conv", "Cos", "CumSum", "Div", "Equal", "Erf", "Exp",
    "Expand", "Flatten", "Floor", "Gather", "GatherElements", "Gelu", "Gemm", "Greater", "GreaterOrEqual", "If",
    "LayerNormalization", "Less", "LessOrEqual", "Log", "MatMul", "Mul", "Neg", "Not", "Pad", "Pow", "Range", "Reciprocal",
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
    "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Sin", "Slice", "Softmax", "Split",
    "Sqrt", "Squeeze", "Sub", "Tanh", "Tile", "Transpose", "Unsqueeze", "Where",
}
# Kernels that move or reshape data, or consume indices, and accept int64 / bool element types.
ANY_TYPE = {"Cast", "Concat", "Expand", "Flatten", "Gather", "GatherElements", "If", "Not", "Reshape", "Shape", "Slice",
            "Split", "Squeeze", "Tile", "Transpose", "Unsqueeze", "Where"}
# Comparisons output bool from number inputs: their input type is what counts.
GPU_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32, TensorProto.UINT32}


def types_of(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    out: dict[str, int] = {}

    def collect(g: onnx.GraphProto) -> None:
        for v in list(g.value_info) + list(g.input) + list(g.output):
            out[v.name] = v.type.tensor_type.elem_type
        for init in g.initializer:
            out[init.name] = init.data_type
        for n in g.node:
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        out[n.output[0]] = a.t.data_type
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    collect(a.g)

    collect(inferred.graph)
    return out


def classify(op: str, dtype: int) -> str:
    if op not in WEBGPU_KERNELS:
        return "CPU: no WebGPU kernel"
    if op in ANY_TYPE or dtype in GPU_TYPES:
        return "WebGPU"
    if op == "Range" and dtype == TensorProto.INT64:
        return "CPU: Range has float and int32 kernels only"
    return f"CPU: {TensorProto.DataType.Name(dtype).lower()} not among the kernel's types"


def main(path: str) -> int:
    model = onnx.load(path)
    types = types_of(model)
    counts: collections.Counter = collections.Counter()

    def walk(g: onnx.GraphProto) -> None:
        for n in g.node:
            first = next((i for i in n.input if i), "")
            counts[(n.op_type, types.get(first, 0))] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    walk(model.graph)
    rows = sorted(counts.items(), key=lambda kv: (classify(*kv[0]) == "WebGPU", kv[0][0]))
    print("| op | first input | nodes | predicted placement |")
    print("| --- | --- | --- | --- |")
    for (op, dtype), n in rows:
        name = TensorProto.DataType.Name(dtype).lower() if dtype else "?"
        print(f"| {op} | {name} | {n} | {classify(op, dtype)} |")
    gpu = sum(n for k, n in counts.items() if classify(*k) == "WebGPU")
    print(f"\n{gpu} of {sum(counts.values())} nodes predicted on WebGPU.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

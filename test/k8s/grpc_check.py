"""`make k8s-test`'s gRPC check: Triton's stock client (tritonclient.grpc) through the Service.

Usage: python grpc_check.py HOST:PORT MODEL VIDEO. Prints the top label and the tokens per layer;
exits non-zero when the server is not ready or the answer lacks them.
"""
import sys

import numpy as np
import tritonclient.grpc as tgrpc

address, model, video = sys.argv[1:4]
client = tgrpc.InferenceServerClient(address)
assert client.is_server_ready() and client.is_model_ready(model), "server or model not ready"
tensor = tgrpc.InferInput("VIDEO", [1, 1], "BYTES")
with open(video, "rb") as f:
    tensor.set_data_from_numpy(np.array([[f.read()]], dtype=np.object_))
result = client.infer(model, [tensor], outputs=[tgrpc.InferRequestedOutput(n) for n in ("LABELS", "TOKENS", "GFLOPS")])
labels = [s.decode() for s in result.as_numpy("LABELS")[0]]
tokens = result.as_numpy("TOKENS")[0].tolist()
assert labels and len(tokens) > 0 and tokens[0] > 0, f"unexpected answer: {labels} {tokens}"
print(f"gRPC infer through the Service: top {labels[0]!r}, tokens per layer {tokens}, {float(result.as_numpy('GFLOPS')[0][0]):.3f} GFLOPs")

"""The Open Inference Protocol as stock clients see it: tritonclient (HTTP and gRPC),
grpcio-health-checking and grpcio-reflection against the real server process (src/server.ts
through tsx), unchanged; and the live-stream service through stubs that grpcio-tools generates from
proto/streams.proto, as the README's Python example does. Run by `make test-oip` (part of `make test`) in the clients venv
(scripts/python-clients-env.sh).

The server runs with AUTH_TOKEN, a small MAX_UPLOAD_BYTES and a SHUTDOWN_DELAY_MS long enough to
read health while it drains; the drain test is last and stops it.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import importlib
import sys
import threading

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from tritonclient.utils import InferenceServerException

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "oip-test-token-0123456789"


def auth():
    """A fresh dict each call: tritonclient's HTTP infer writes its own headers into the one given."""
    return {"authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD = 1_000_000
MODEL = "tiny"
SERVICE = "inference.GRPCInferenceService"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(folder):
    """The same recipe as test/helpers/media.ts's clip.mp4: 2 s of testsrc2, 320x240, x264."""
    out = Path(folder) / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )
    return out.read_bytes()


class Server:
    def __init__(self, folder):
        self.http_port, self.grpc_port = free_port(), free_port()
        env = {
            "PATH": os.environ["PATH"],
            "PORT": str(self.http_port),
            "GRPC_PORT": str(self.grpc_port),
            "HOST": "127.0.0.1",
            "MODEL_DIR": str(ROOT / "models" / "fixtures" / "tiny"),
            "EXECUTION_PROVIDERS": "cpu",
            "INTRA_OP_THREADS": "1",
            "UPLOAD_DIR": folder,
            "AUTH_TOKEN": TOKEN,
            "MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
            "SHUTDOWN_DELAY_MS": "3000",
            "LOG_LEVEL": "warn",
        }
        self.log = open(Path(folder) / "server.log", "wb")
        self.proc = subprocess.Popen(["node", "--import", "tsx", str(ROOT / "src" / "server.ts")], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.grpc_url = f"127.0.0.1:{self.grpc_port}"
        self.http_url = f"127.0.0.1:{self.http_port}"
        self.channel = grpc.insecure_channel(self.grpc_url)

    def health(self, service=""):
        """SERVING / NOT_SERVING, or None while nothing answers on the port."""
        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                return None
            raise

    def log_text(self):
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="haltingvt-oip-") as d:
        yield d


@pytest.fixture(scope="module")
def clip(folder):
    return make_clip(folder)


@pytest.fixture(scope="module")
def server(folder):
    s = Server(folder)
    # Health from the first moment the port answers until the model is ready.
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = s.health()
        if status is not None and (not seen or seen[-1] != status):
            seen.append(status)
        if status == "SERVING":
            break
        assert s.proc.poll() is None, s.log_text()
        time.sleep(0.02)
    s.start_health = seen
    yield s
    if s.proc.poll() is None:
        s.proc.kill()
    s.channel.close()


@pytest.fixture(scope="module")
def http(server):
    return thttp.InferenceServerClient(server.http_url)


@pytest.fixture(scope="module")
def grpc_client(server):
    return tgrpc.InferenceServerClient(server.grpc_url)


def video_input(module, videos):
    tensor = module.InferInput("VIDEO", [len(videos), 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[v] for v in videos], dtype=np.object_))
    return tensor


def outputs(module, *names, classification=0):
    return [module.InferRequestedOutput(n, class_count=classification) for n in names]


def v1_classify(server, clip, **knobs):
    query = "&".join(f"{k}={v}" for k, v in knobs.items())
    request = urllib.request.Request(f"http://{server.http_url}/v1/classify?{query}", data=clip, method="POST", headers={"content-type": "video/mp4", **auth()})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def make_live_clip(folder):
    """test/helpers/media.ts's live.mpegts: 6 s of 640x360 testsrc2, x264 with B-frames, MPEG-TS."""
    out = Path(folder) / "live.mpegts"
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p", "-f", "mpegts", str(out)],
        check=True,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def live_clip(folder):
    return make_live_clip(folder)


@pytest.fixture(scope="module")
def streams(folder):
    """streams_pb2 and streams_pb2_grpc, generated with grpc_tools.protoc from proto/streams.proto."""
    from grpc_tools import protoc

    out = Path(folder) / "stubs"
    out.mkdir(exist_ok=True)
    assert protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}", str(ROOT / "proto" / "streams.proto")]) == 0
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("streams_pb2"), importlib.import_module("streams_pb2_grpc")
    finally:
        sys.path.remove(str(out))


def stream_messages(pb, data, held=None, **config):
    yield pb.StreamMessage(config=pb.StreamConfig(**config))
    for at in range(0, len(data), 64 * 1024):
        yield pb.StreamMessage(chunk=data[at : at + 64 * 1024])
    if held is not None:
        held.wait(30)  # keeps the stream open (no half-close) until the test lets go


@pytest.fixture(params=["http", "grpc"])
def client(request, http, grpc_client):
    return (thttp, http) if request.param == "http" else (tgrpc, grpc_client)


def test_health_turns_serving_when_the_model_is_ready(server):
    # Whether NOT_SERVING is caught before the warm-up ends is a race; test/grpc/grpc.test.ts holds
    # the engine back to see it for sure. Here: never anything but NOT_SERVING before SERVING.
    assert server.start_health in (["NOT_SERVING", "SERVING"], ["SERVING"])
    assert server.health(SERVICE) == "SERVING"


def test_reflection_lists_the_service(server):
    services = ProtoReflectionDescriptorDatabase(server.channel).get_services()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_live_ready_and_metadata(client):
    module, c = client
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(MODEL)
    server = c.get_server_metadata(as_json=True) if module is tgrpc else c.get_server_metadata()
    assert set(server["extensions"]) >= {"binary_tensor_data", "classification"}
    model = c.get_model_metadata(MODEL, as_json=True) if module is tgrpc else c.get_model_metadata(MODEL)
    assert model["inputs"][0]["name"] == "VIDEO" and model["inputs"][0]["datatype"] == "BYTES"
    assert [o["name"] for o in model["outputs"]] == ["LABELS", "PROBABILITIES", "GFLOPS", "TOKENS", "ERROR", "EXPLANATION"]
    with pytest.raises(InferenceServerException) as info:
        c.get_model_metadata("other")
    assert "other" in info.value.message()


def test_one_video_equals_v1_with_the_same_knobs(client, server, clip):
    module, c = client
    knobs = {"keep_ratio": 0.7, "halt_threshold": 0.9, "top_k": 3}
    result = c.infer(MODEL, [video_input(module, [clip])], outputs=outputs(module, "LABELS", "PROBABILITIES", "GFLOPS", "TOKENS"), parameters=knobs, headers=auth())
    v1 = v1_classify(server, clip, **knobs)
    labels = [s.decode() for s in result.as_numpy("LABELS")[0]]
    assert labels == [f"{p['probability']:.6f}:{p['index']}:{p['label']}" for p in v1["top"]]
    assert result.as_numpy("TOKENS")[0].tolist() == v1["tokens"]["per_layer"]
    assert result.as_numpy("GFLOPS")[0][0] == pytest.approx(v1["gflops"], rel=1e-5)
    probabilities = result.as_numpy("PROBABILITIES")[0]
    assert probabilities.shape == (5,) and probabilities.sum() == pytest.approx(1, abs=1e-5)
    for p in v1["top"]:
        assert probabilities[p["index"]] == pytest.approx(p["probability"], abs=1e-6)
    parameters = result.get_response(as_json=True)["parameters"] if module is tgrpc else result.get_response()["parameters"]
    # gRPC's JSON form is {"double_param": 0.7} / {"int64_param": "3"} (int64 as a string).
    used = {k: float(v.get("double_param", v.get("int64_param"))) if isinstance(v, dict) else v for k, v in parameters.items() if k in knobs}
    assert used == pytest.approx(knobs)


def test_a_batch_of_three_where_the_middle_is_not_a_video(client, clip):
    module, c = client
    result = c.infer(MODEL, [video_input(module, [clip, b"this is not a video" * 20, clip])], outputs=outputs(module, "LABELS", "ERROR", "TOKENS"), headers=auth())
    errors = [e[0].decode() for e in result.as_numpy("ERROR")]
    assert errors[0] == "" and errors[2] == ""
    assert errors[1].startswith("VIDEO_UNDECODABLE: ")
    labels = result.as_numpy("LABELS")
    assert labels[0].tolist() == labels[2].tolist() and labels[0][0] != b""
    assert labels[1].tolist() == [b""] * labels.shape[1]
    assert result.as_numpy("TOKENS")[1].tolist() == [0, 0, 0, 0]


def test_classification_extension(client, clip):
    module, c = client
    result = c.infer(MODEL, [video_input(module, [clip])], outputs=outputs(module, "PROBABILITIES", classification=2), headers=auth())
    top = result.as_numpy("PROBABILITIES")
    assert top.shape == (1, 2)
    scores = [float(s.decode().split(":")[0]) for s in top[0]]
    assert scores == sorted(scores, reverse=True)


def test_out_of_range_knob(client, server, clip):
    module, c = client
    with pytest.raises(InferenceServerException) as info:
        c.infer(MODEL, [video_input(module, [clip])], parameters={"keep_ratio": 7.0}, headers=auth())
    assert "keep_ratio=7 is out of range" in info.value.message()
    assert info.value.status() == ("StatusCode.INVALID_ARGUMENT" if module is tgrpc else "400")


def test_missing_token(client, clip):
    module, c = client
    with pytest.raises(InferenceServerException) as info:
        c.infer(MODEL, [video_input(module, [clip])])
    assert info.value.status() == ("StatusCode.UNAUTHENTICATED" if module is tgrpc else "401")


def test_message_over_the_limit(client):
    module, c = client
    with pytest.raises(InferenceServerException) as info:
        c.infer(MODEL, [video_input(module, [bytes(MAX_UPLOAD + 100_000)])], headers=auth())
    assert info.value.status() == ("StatusCode.RESOURCE_EXHAUSTED" if module is tgrpc else "413")


def test_stream_infer_answers_each_request(grpc_client, clip):
    answers = {}

    def callback(result, error):
        if error is not None:
            answers[f"error:{len(answers)}"] = error.message()
        else:
            answers[result.get_response().id] = [s.decode() for s in result.as_numpy("LABELS")[0]]

    grpc_client.start_stream(callback=callback, headers=auth())
    try:
        grpc_client.async_stream_infer(MODEL, [video_input(tgrpc, [clip])], request_id="a", outputs=outputs(tgrpc, "LABELS"))
        grpc_client.async_stream_infer(MODEL, [video_input(tgrpc, [clip])], request_id="b", outputs=outputs(tgrpc, "LABELS"), parameters={"top_k": 99})
        grpc_client.async_stream_infer(MODEL, [video_input(tgrpc, [clip])], request_id="c", outputs=outputs(tgrpc, "LABELS"), parameters={"top_k": 1})
    finally:
        grpc_client.stop_stream()
    assert len(answers["a"]) == 5 and len(answers["c"]) == 1
    errors = [v for k, v in answers.items() if k.startswith("error:")]
    assert len(errors) == 1 and "top_k=99 is out of range" in errors[0]


def test_live_stream_through_generated_stubs(server, streams, live_clip):
    pb, rpc = streams
    stub = rpc.StreamsStub(server.channel)
    events = list(stub.Classify(stream_messages(pb, live_clip, window_s=2, top_k=3, format="mpegts"), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=60))
    assert [e.event for e in events] == ["started"] + ["window"] * 5 + ["ended"]
    windows = [e for e in events if e.event == "window"]
    assert [(w.seq, w.start_s, w.end_s) for w in windows] == [(k, k, k + 2) for k in range(5)]
    for w in windows:
        assert len(w.top) == 3 and w.gflops > 0 and len(w.tokens_per_layer) > 0
        assert json.loads(w.json)["top"][0]["label"] == w.top[0].label
    assert json.loads(events[-1].json)["summary"]["windows"] == 5
    # Without the token: refused before anything is read.
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Classify(stream_messages(pb, b"", window_s=2), timeout=10))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_drain_turns_health_not_serving_and_refuses_new_work(server, grpc_client, clip, streams, live_clip):
    assert server.health() == "SERVING"
    # A live stream open when SIGTERM comes ends with its final event.
    pb, rpc = streams
    held = threading.Event()
    call = rpc.StreamsStub(server.channel).Classify(stream_messages(pb, live_clip[: len(live_clip) // 2], held, window_s=1), metadata=[("authorization", f"Bearer {TOKEN}")], timeout=60)
    events = []
    reader = threading.Thread(target=lambda: events.extend(call))
    reader.start()
    deadline = time.monotonic() + 20
    while not any(e.event == "window" for e in events) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(e.event == "window" for e in events), server.log_text()
    server.proc.send_signal(signal.SIGTERM)
    reader.join(20)
    held.set()
    assert events[-1].event == "ended" and json.loads(events[-1].json)["reason"] == "shutdown"
    deadline = time.monotonic() + 5
    while server.health() == "SERVING" and time.monotonic() < deadline:
        time.sleep(0.02)
    # SHUTDOWN_DELAY_MS keeps both ports open while readiness reports the drain.
    assert server.health() == "NOT_SERVING"
    assert not grpc_client.is_server_ready()
    with pytest.raises(InferenceServerException) as info:
        grpc_client.infer(MODEL, [video_input(tgrpc, [clip])], headers=auth())
    assert info.value.status() == "StatusCode.UNAVAILABLE"
    assert "DRAINING" in info.value.message()
    assert server.proc.wait(timeout=30) == 0, server.log_text()

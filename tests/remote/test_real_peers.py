"""Remote engines for real: slmdesk serve as the engine of a second slmdesk home, and
llama.cpp's llama-server (built from the installed llama-cpp-python's vendored llama.cpp)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.classify.classifier import Classifier
from slmdesk.classify.spec import ClassifierSpec, Label
from slmdesk.engine.params import SamplingParams
from slmdesk.engine.remote.client import RemoteEngine
from slmdesk.errors import UnsupportedFeatureError
from slmdesk.remote.classify import RemoteClassifier
from tests.server.conftest import TOKEN, _served

pytestmark = pytest.mark.model

HI = [{"role": "user", "content": "Say hello."}]
SPEC = ClassifierSpec(labels=(Label("positive"), Label("negative")), calibration="none")
TEXTS = ["I loved this film, it was wonderful.", "A boring, awful waste of two hours.",
         "Great food and friendly staff!", "The product broke after one day. Terrible."]
# Largest |p_remote - p_local| allowed for a label probability. Measured on an AMD EPYC (Zen 4,
# 2 cores), llama-server built from the same vendored llama.cpp: 0.0278 and 0.0122 in two runs
# (llama-server decodes the prompt in other batch shapes and serves top-n probabilities).
# Tolerance: about twice the larger.
PROB_TOLERANCE = 0.06
MARGIN = 0.2  # labels must agree where the local top label leads by at least this


@pytest.fixture(scope="module")
def slmdesk_engine(model_path: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[RemoteEngine]:
    for server in _served(tmp_path_factory.mktemp("serve-home"), with_model=True):
        yield RemoteEngine(server.base_url, TOKEN)


def test_slmdesk_serve_is_the_remote_engine_of_another_home(
        slmdesk_engine: RemoteEngine) -> None:
    pieces: list[str] = []
    result = slmdesk_engine.stream_chat(HI, SamplingParams(max_tokens=12, seed=1),
                                        on_text=pieces.append)
    assert result.finish_reason in ("stop", "length")
    assert result.text == "".join(pieces) and result.text
    assert result.completion_tokens > 0 and result.prompt_tokens > 0
    caps = slmdesk_engine.capabilities
    assert caps.kind == "slmdesk" and caps.has("logprobs") and caps.has("embeddings")


def test_classifying_through_slmdesk_serve_is_refused_not_degraded(
        slmdesk_engine: RemoteEngine) -> None:
    with pytest.raises(UnsupportedFeatureError, match="tokenization"):
        RemoteClassifier(slmdesk_engine, SPEC)


# llama-server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _llama_server_binary() -> Path:
    from bench import llama_bench

    path = llama_bench.binary_path(tool=llama_bench.SERVER_TOOL)
    if path.is_file():
        return path
    if os.environ.get("CI"):
        return llama_bench.ensure_built(tool=llama_bench.SERVER_TOOL)  # minutes, once
    pytest.skip(f"llama-server is not built ({path}); python -m bench.llama_bench llama-server")


@pytest.fixture(scope="module")
def llama_server(model_path: Path) -> Iterator[RemoteEngine]:
    from bench import llama_bench

    binary = _llama_server_binary()
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), "-m", str(model_path), "--host", "127.0.0.1", "--port", str(port),
         "-c", "2048", "-t", "1", "-np", "1", "--no-webui"],
        env=llama_bench.tool_environment(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if json.loads(r.read()).get("status") == "ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "llama-server did not become ready"
            time.sleep(0.2)
        yield RemoteEngine(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(10)


def test_chat_through_llama_server(llama_server: RemoteEngine) -> None:
    result = llama_server.stream_chat(HI, SamplingParams(max_tokens=12, temperature=0))
    assert result.finish_reason in ("stop", "length") and result.text
    assert llama_server.capabilities.kind == "llama-server"


def test_llama_server_classification_matches_local(llama_server: RemoteEngine,
                                                   engine: object) -> None:
    remote = RemoteClassifier(llama_server, SPEC, concurrency=2)
    assert remote.method == "top-n"
    local = Classifier(engine, SPEC)  # type: ignore[arg-type]
    worst = 0.0
    for text in TEXTS:
        theirs, ours = remote.classify(text), local.classify(text)
        assert remote.result_json(theirs)["method"] == "top-n"
        worst = max(worst, *(abs(theirs.probs[k] - ours.probs[k]) for k in ours.probs))
        top = sorted(ours.probs.values(), reverse=True)
        if top[0] - top[1] >= MARGIN:
            assert theirs.label == ours.label, text
    print(f"largest probability difference, llama-server vs local: {worst:.4f}")
    assert worst <= PROB_TOLERANCE

"""The served engine against a real OpenAI-compatible server on 127.0.0.1 backed by the tiny model."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from judo.engines import ConfigError, InspectionRequest, build_engines, load_config
from judo.engines import served as served_module
from judo.engines.qwen import QwenEngine
from judo.engines.served import ServedEngine
from judo.generation import decoding
from judo.openai_api import Endpoint
from tests.noise import noise
from tests.openai_server import Fault, OpenAIServer, free_port

OPTIONS = {"A": "Yes.", "B": "No."}
KEY_ENV = "JUDO_TEST_SERVED_KEY"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from judo.models import load_model, load_processor

    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


@pytest.fixture
def server(tiny, tiny_model_dir):
    model, processor = tiny
    with OpenAIServer(tiny_model_dir, model=model, processor=processor) as srv:
        yield srv


def request(seed: int = 0) -> InspectionRequest:
    return InspectionRequest(
        noise(seed, (320, 240)), noise(seed + 1, (300, 300)), "Is there any defect?", OPTIONS
    )


def engine(srv: OpenAIServer, *, max_new_tokens: int = 48, **endpoint) -> ServedEngine:
    ep = Endpoint(srv.base_url, **{"max_retries": 0, "timeout_s": 10.0, **endpoint})
    return ServedEngine(
        "served", "Served", ep, srv.model_name, defaults=decoding(max_new_tokens=max_new_tokens)
    )


def test_greedy_output_equals_the_in_process_engine_token_for_token(server, tiny):
    import torch

    from judo.generation import _generate_kwargs, encode
    from judo.prompts import inspection_prompt

    model, processor = tiny
    req = request()
    served_updates = list(engine(server).stream(req))
    local_updates = list(
        QwenEngine("local", "Local", model, processor, defaults=decoding(max_new_tokens=48)).stream(req)
    )
    served, local = served_updates[-1], local_updates[-1]
    assert served.error is None and served.done and served.text
    assert (served.text, served.answer, served.cells) == (local.text, local.answer, local.cells)
    assert served.meta["backend"] == "openai" and served.meta["model"] == "tiny"
    assert served.meta["warnings"] == local.meta["warnings"]
    # the token ids the server generated are the ones transformers generates in process
    prompt = inspection_prompt(req.query, req.template, req.question, req.options)
    inputs = encode(processor, prompt)
    with torch.inference_mode():
        out = model.generate(**inputs, **_generate_kwargs(processor, decoding(max_new_tokens=48)))
    expected = out[0, inputs["input_ids"].shape[1] :].tolist()
    assert server.generated[0] == expected
    assert served.meta["new_tokens"] == len(expected)
    # it streamed: text only grows, many updates before the final one
    texts = [u.text for u in served_updates]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert sum(1 for u in served_updates if u.text and not u.done) >= 10
    # what went over the wire: greedy, the budget, two 448x448 PNG data URLs (template, then query)
    body = server.requests[0].body
    assert body["temperature"] == 0.0 and body["max_tokens"] == 48 and body["stream"] is True
    urls = [p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)


def test_sampling_settings_go_over_the_wire(server):
    from transformers import GenerationConfig

    settings = GenerationConfig(max_new_tokens=5, do_sample=True, temperature=0.5, top_p=0.8)
    final = list(engine(server).stream(request(), None, settings))[-1]
    assert final.error is None
    body = server.requests[0].body
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (5, 0.5, 0.8)


def test_stop_closes_the_stream_and_the_server_stops_generating(server):
    server.token_delay_s = 0.05
    stop = threading.Event()
    seen = []
    for update in engine(server, max_new_tokens=400).stream(request(), stop):
        seen.append(update)
        if len([u for u in seen if u.text]) == 3:
            stop.set()
    assert seen[-1].done and seen[-1].meta["stopped"]
    assert any("Stopped by the user" in w for w in seen[-1].meta["warnings"])
    deadline = time.monotonic() + 10
    while (server.cancelled < 1 or server.in_flight) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.cancelled == 1 and server.in_flight == 0 and server.completed == 0


def test_a_server_that_is_down_makes_the_engine_unavailable_then_it_recovers(
    tiny, tiny_model_dir, monkeypatch
):
    port = free_port()
    ep = Endpoint(f"http://127.0.0.1:{port}/v1", max_retries=0)
    eng = ServedEngine("served", "Served", ep, "tiny")
    assert not eng.available and "cannot be reached" in eng.reason and str(port) in eng.reason
    final = list(eng.stream(request()))[-1]
    assert final.done and final.error.startswith("Served is unavailable: The server at")
    monkeypatch.setattr(served_module, "RECHECK_S", 0.0)
    model, processor = tiny
    with OpenAIServer(tiny_model_dir, model=model, processor=processor).start(port=port):
        assert eng.available
        assert list(eng.stream(request()))[-1].error is None


def test_a_server_without_the_model_names_what_it_serves(server):
    eng = ServedEngine("served", "Served", Endpoint(server.base_url), "org/judo-7b")
    assert not eng.available
    assert "does not serve 'org/judo-7b'" in eng.reason and "tiny" in eng.reason


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.http(503, "overloaded"), "answered HTTP 503: overloaded."),
        (Fault.http(400, "max_tokens is too large"), "answered HTTP 400: max_tokens is too large."),
        (Fault.timeout(3), "did not answer within 0.5 s."),
        (Fault.stall(after=4, seconds=3), "did not answer within 0.5 s."),
        (Fault.garbage(), "sent a reply that is not an OpenAI chat completion"),
        (Fault.stream_error(after=3), "reported an error: the engine died."),
    ],
    ids=["503", "400", "timeout", "stall-mid-stream", "garbage", "error-event"],
)
def test_a_failing_server_gives_one_clear_sentence(server, fault, message):
    server.faults = [fault]
    final = list(engine(server, timeout_s=0.5).stream(request()))[-1]
    assert final.done and final.error and message in final.error
    assert final.error.startswith(f"The server at {server.base_url}")
    assert "Traceback" not in final.error and "\n" not in final.error


def test_refused_credentials_name_the_variable(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-secret-123")
    server.faults = [Fault.http(401, "bad key")]
    final = list(engine(server, api_key_env=KEY_ENV).stream(request()))[-1]
    assert "refused the credentials (HTTP 401)" in final.error and KEY_ENV in final.error
    assert "sk-secret-123" not in final.error
    assert server.requests[0].body["model"] == "tiny"


def test_a_busy_server_is_retried_honouring_retry_after(server):
    server.faults = [Fault.http(429, "slow down", retry_after=0.3)]
    final = list(engine(server, max_retries=2).stream(request()))[-1]
    assert final.error is None and final.text
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.25


def test_config_builds_a_served_engine_and_a_down_one_does_not_stop_the_app(server, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/v1"
    (tmp_path / "app.yaml").write_text(
        "engines:\n"
        f"  - {{id: served, label: Served, kind: openai, base_url: '{server.base_url}', model: tiny,"
        " max_new_tokens: 16}\n"
        f"  - {{id: gone, label: Gone, kind: openai, base_url: '{down}', model: tiny}}\n"
        "  - {id: comparator, label: Comparator, kind: comparator}\n"
    )
    served, gone, comparator = build_engines(load_config(tmp_path / "app.yaml", env={}))
    assert served.available and served.kind == "openai" and comparator.available
    assert not gone.available and "cannot be reached" in gone.reason
    final = list(served.stream(request()))[-1]
    assert final.error is None and server.requests[0].body["max_tokens"] == 16


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("model: tiny", "base_url is required"),
        ("base_url: 'http://h:1/v1'", "model is required"),
        ("base_url: 'h:1/v1', model: m", "must start with http"),
        ("base_url: 'http://h:1/v1', model: m, timeout_s: 0", "timeout_s must be > 0"),
    ],
)
def test_bad_served_engine_config_says_what_is_wrong(tmp_path, fields, message):
    (tmp_path / "app.yaml").write_text(f"engines:\n  - {{id: s, label: S, kind: openai, {fields}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "app.yaml", env={})


def test_answer_batch_spreads_over_replicas_in_order_with_bounded_concurrency(tiny, tiny_model_dir):
    model, processor = tiny
    replicas = [OpenAIServer(tiny_model_dir, model=model, processor=processor, parallel=4) for _ in range(2)]
    with replicas[0] as one, replicas[1] as two:
        one.token_delay_s = two.token_delay_s = 0.01
        endpoints = [Endpoint(one.base_url, max_retries=0), Endpoint(two.base_url, max_retries=0)]
        eng = ServedEngine(
            "served",
            "Served",
            endpoints,
            "tiny",
            concurrency=2,
            defaults=decoding(max_new_tokens=8),
        )
        requests = [request(seed) for seed in range(8)]
        finals = eng.answer_batch(requests)
        assert [u.error for u in finals] == [None] * 8
        assert one.calls + two.calls == 8 and one.calls >= 2 and two.calls >= 2
        assert one.max_in_flight <= 2 and two.max_in_flight <= 2
        assert {u.meta["base_url"] for u in finals} == {one.base_url, two.base_url}
        one.token_delay_s = two.token_delay_s = 0.0
        assert [u.text for u in finals] == [list(eng.stream(r))[-1].text for r in requests]


def test_published_checkpoint_presets_in_the_app_config_are_valid_engines(tmp_path):
    """configs/app.yaml lists the presets commented out; uncommented they load as a valid config."""
    text = (REPO / "configs" / "app.yaml").read_text()
    block = text.split("# @presets-begin\n", 1)[1].split("  # @presets-end", 1)[0]
    engines = "\n".join(line.replace("  # ", "  ", 1) for line in block.splitlines())
    (tmp_path / "app.yaml").write_text("engines:\n" + engines + "\n")
    cfg = load_config(tmp_path / "app.yaml", env={})
    kinds = {e.id: (e.kind, e.prompt_style) for e in cfg.engines}
    assert kinds["qwen-base"] == ("qwen", "mmad") and kinds["judo-release"] == ("qwen", "judo")
    assert kinds["emit"][0] == kinds["ad-copilot"][0] == "openai"
    assert {e.model for e in cfg.engines if e.kind == "openai"} == {
        "jiang-cc/AD-Copilot", "jiang-cc/AD-Copilot-Thinking", "gw49/EMIT-8B"}  # fmt: skip

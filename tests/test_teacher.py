"""The teacher client against a real HTTP server on 127.0.0.1: replies, every fault, concurrency."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from PIL import Image

from judo.data.teacher import (
    TeacherAuthError,
    TeacherClient,
    TeacherConfig,
    TeacherError,
    TeacherReply,
    _retry_after_s,
    image_to_data_url,
    user_message,
)
from tests.teacher_server import Fault, TeacherServer

KEY_ENV = "JUDO_TEST_TEACHER_KEY"
SECRET = "sk-test-secret-0123456789"


def make_client(server: TeacherServer, **overrides) -> TeacherClient:
    cfg = {
        "base_url": server.base_url,
        "model": "teacher-x",
        "api_key_env": KEY_ENV,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    cfg.update(overrides)
    return TeacherClient(TeacherConfig(**cfg))


def conversation(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def test_chat_sends_model_params_key_and_images_and_keeps_raw_reply():
    query = Image.new("RGB", (40, 30), (200, 10, 10))
    template = Image.new("RGB", (40, 30), (10, 200, 10))
    with TeacherServer(reply=lambda req: "the query has a scratch") as server:
        with make_client(server, temperature=0.3) as client:
            reply = client.chat([user_message("compare the two images", [query, template])], max_tokens=77)
    assert isinstance(reply, TeacherReply)
    assert reply.text == "the query has a scratch"
    assert reply.raw["object"] == "chat.completion"
    assert reply.raw["choices"][0]["message"]["content"] == reply.text
    assert reply.attempts == 1 and reply.latency_s > 0
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.model == "teacher-x"
    assert req.authorization == f"Bearer {SECRET}"
    assert req.body["temperature"] == 0.3 and req.body["max_tokens"] == 77
    assert req.texts() == ["compare the two images"]
    urls = req.image_urls()
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    decoded = [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))) for u in urls]
    assert [im.size for im in decoded] == [(40, 30), (40, 30)]
    assert decoded[0].convert("RGB").getpixel((0, 0)) == (200, 10, 10)
    assert decoded[1].convert("RGB").getpixel((0, 0)) == (10, 200, 10)


def test_no_authorization_header_when_key_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(KEY_ENV)
    with TeacherServer() as server, make_client(server) as client:
        assert client.chat(conversation("hi")).text == "echo: hi"
    assert server.requests[0].authorization is None


def test_429_with_retry_after_is_honoured_then_succeeds():
    with TeacherServer(faults=[Fault.http(429, retry_after=1)]) as server, make_client(server) as client:
        reply = client.chat(conversation("hi"))
    assert reply.text == "echo: hi" and reply.attempts == 2
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.95  # waited for Retry-After, not the 10 ms backoff


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(500),
        Fault.http(503),
        Fault.http(502, body="<html>bad gateway"),
        Fault.drop(),
        Fault.timeout(1.5),
    ],
    ids=["500", "503", "502", "drop", "timeout"],
)
def test_transient_faults_are_retried(fault: Fault):
    with TeacherServer(faults=[fault, fault]) as server, make_client(server, timeout_s=0.4) as client:
        reply = client.chat(conversation("again"))
    assert reply.text == "echo: again"
    assert reply.attempts == 3 and server.calls == 3


def test_exhausted_retries_report_last_status_and_body():
    with TeacherServer(faults=lambda i, req: Fault.http(503, body="overloaded, try later")) as server:
        with make_client(server, max_retries=2) as client, pytest.raises(TeacherError) as info:
            client.chat(conversation("hi"))
    assert server.calls == 3
    err = info.value
    assert not isinstance(err, TeacherAuthError)
    assert err.status == 503 and "overloaded" in err.body
    assert "3 attempts" in str(err) and "HTTP 503" in str(err) and "overloaded" in str(err)


def test_timeouts_exhausted_name_the_timeout():
    with TeacherServer(faults=lambda i, req: Fault.timeout(2)) as server:
        with make_client(server, timeout_s=0.2, max_retries=1) as client, pytest.raises(TeacherError) as info:
            client.chat(conversation("slow"))
    assert "timed out after 0.2 s" in str(info.value) and info.value.status is None


def test_connection_refused_is_retried_then_reported():
    server = TeacherServer().start()
    url = server.base_url
    server.stop()  # nothing listens on the port any more
    client = TeacherClient(TeacherConfig(base_url=url, model="m", max_retries=2, backoff_base_s=0.01))
    with pytest.raises(TeacherError, match="connection error"):
        client.chat(conversation("hi"))


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_raises_at_once_naming_the_env_var(status: int):
    with TeacherServer(faults=[Fault.http(status)] * 5) as server, make_client(server) as client:
        with pytest.raises(TeacherAuthError) as info:
            client.chat(conversation("hi"))
    assert server.calls == 1  # never retried
    assert KEY_ENV in str(info.value) and f"HTTP {status}" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(client)


def test_auth_failure_with_unset_key_says_so(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(KEY_ENV)
    with TeacherServer(api_key="the-right-key") as server, make_client(server) as client:
        with pytest.raises(TeacherAuthError, match=f"{KEY_ENV} \\(it is not set\\)"):
            client.chat(conversation("hi"))


def test_server_checked_key_accepts_the_env_key():
    with TeacherServer(api_key=SECRET) as server, make_client(server) as client:
        assert client.chat(conversation("ok")).text == "echo: ok"


def test_client_error_400_is_not_retried():
    with TeacherServer(faults=[Fault.http(400, body='{"error": "max_tokens too large"}')] * 3) as server:
        with make_client(server) as client, pytest.raises(TeacherError, match="max_tokens too large"):
            client.chat(conversation("hi"))
    assert server.calls == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.invalid_json(), "not valid JSON"),
        (Fault.empty_choices(), "no choices"),
        (Fault.empty_content(), "empty message"),
    ],
    ids=["invalid-json", "empty-choices", "empty-content"],
)
def test_unusable_replies_raise_teacher_error_with_excerpt(fault: Fault, message: str):
    with TeacherServer(faults=[fault]) as server, make_client(server) as client:
        with pytest.raises(TeacherError, match=message) as info:
            client.chat(conversation("hi"))
    assert server.calls == 1 and info.value.status == 200 and info.value.body


def test_full_response_dict_from_reply_is_passed_through():
    raw = {
        "id": "x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": [{"type": "text", "text": "parts"}]}}
        ],
    }
    with TeacherServer(reply=lambda req: raw) as server, make_client(server) as client:
        reply = client.chat(conversation("hi"))
    assert reply.text == "parts" and reply.raw == raw


def test_map_bounds_concurrency_and_returns_every_item():
    n, limit = 16, 3
    with TeacherServer(delay_s=0.1) as server, make_client(server, max_concurrency=limit) as client:
        results = dict(client.map(conversation(f"item {i}") for i in range(n)))
    assert sorted(results) == list(range(n))
    assert all(results[i].text == f"echo: item {i}" for i in range(n))
    assert server.max_in_flight == limit  # reached, never exceeded


def test_map_yields_item_errors_and_carries_on():
    def faults(index: int, req: dict):
        return Fault.invalid_json() if "item 2" in req["messages"][0]["content"] else None

    with TeacherServer(faults=faults) as server, make_client(server, max_concurrency=2) as client:
        results = dict(client.map([conversation(f"item {i}") for i in range(5)]))
    assert isinstance(results[2], TeacherError) and "not valid JSON" in str(results[2])
    assert [results[i].text for i in (0, 1, 3, 4)] == [f"echo: item {i}" for i in (0, 1, 3, 4)]


def test_map_raises_auth_error_instead_of_yielding_it():
    with TeacherServer(faults=lambda i, req: Fault.http(401)) as server:
        with make_client(server, max_concurrency=2) as client, pytest.raises(TeacherAuthError):
            list(client.map([conversation(f"item {i}") for i in range(10)]))
    assert server.calls < 10


def test_map_consumes_its_input_lazily():
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield conversation(f"item {i}")

    with TeacherServer() as server, make_client(server, max_concurrency=2) as client:
        for _index, reply in client.map(source()):
            assert isinstance(reply, TeacherReply)
            break
    assert len(pulled) <= 3  # the window, not the whole list


def test_concurrent_chat_calls_share_one_client():
    with TeacherServer(delay_s=0.05) as server, make_client(server) as client:
        out: dict[int, str] = {}
        threads = [
            threading.Thread(target=lambda i=i: out.__setitem__(i, client.chat(conversation(str(i))).text))
            for i in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert out == {i: f"echo: {i}" for i in range(6)}


def test_request_body_is_what_is_sent():
    with TeacherServer() as server, make_client(server) as client:
        body = client.request_body(conversation("hi"), seed=3)
        client.chat(conversation("hi"), seed=3)
    assert server.requests[0].body == body


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": "localhost:8000/v1"}, "http://"),
        ({"model": " "}, "model"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str):
    cfg = {"base_url": "http://127.0.0.1:1/v1", "model": "m"} | kwargs
    with pytest.raises(ValueError, match=match):
        TeacherConfig(**cfg)


def test_endpoint_accepts_root_or_full_url():
    assert (
        TeacherConfig("https://api.openai.com/v1/", "m").endpoint
        == "https://api.openai.com/v1/chat/completions"
    )
    full = "http://h:1/v1/chat/completions"
    assert TeacherConfig(full, "m").endpoint == full


def test_bad_messages_are_rejected_before_sending():
    client = TeacherClient(TeacherConfig("http://127.0.0.1:1/v1", "m"))
    for bad in ([], "hello", [{"content": "no role"}]):
        with pytest.raises(ValueError, match="messages"):
            client.chat(bad)


def test_image_to_data_url_formats():
    rgba = Image.new("RGBA", (8, 6), (1, 2, 3, 128))
    png = image_to_data_url(rgba)
    assert png.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(png.split(",")[1]))).mode == "RGBA"
    jpeg = image_to_data_url(rgba, format="jpg")
    assert jpeg.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(jpeg.split(",")[1]))).format == "JPEG"
    with pytest.raises(ValueError, match="unsupported image format"):
        image_to_data_url(rgba, format="BMP")
    with pytest.raises(TypeError, match="PIL image"):
        image_to_data_url(b"not an image")


def test_user_message_puts_images_first_then_text():
    msg = user_message("describe", [Image.new("L", (4, 4))])
    assert msg["role"] == "user"
    assert [p["type"] for p in msg["content"]] == ["image_url", "text"]
    assert msg["content"][1]["text"] == "describe"
    with pytest.raises(TypeError):
        user_message(None, [])


def test_retry_after_parsing():
    assert _retry_after_s("2") == 2.0
    assert _retry_after_s("0.5") == 0.5
    assert _retry_after_s(None) is None and _retry_after_s("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= _retry_after_s(future) <= 31
    assert _retry_after_s("999999") == 600.0

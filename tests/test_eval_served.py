"""`judo eval --backend openai` against real OpenAI-compatible servers on 127.0.0.1 (the tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from judo.evaluate.records import read_records
from judo.evaluate.run import EvalError, build_parser, run
from judo.evaluate.run import main as eval_main
from tests.killed_eval import kill_eval_midway
from tests.openai_server import Fault, OpenAIServer, free_port

MAX_NEW = "12"
LIMIT = 8


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from judo.models import load_model, load_processor

    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


def make_server(tiny, tiny_model_dir, **kwargs) -> OpenAIServer:
    model, processor = tiny
    return OpenAIServer(tiny_model_dir, model=model, processor=processor, **kwargs)


@pytest.fixture
def server(tiny, tiny_model_dir):
    with make_server(tiny, tiny_model_dir) as srv:
        yield srv


def served_args(root: Path, out: Path, *urls: str, extra: tuple[str, ...] = ()) -> list[str]:
    base = ["--mmad-root", str(root), "--out", str(out), "--backend", "openai", "--model", "tiny"]
    for url in urls:
        base += ["--base-url", url]
    return [*base, "--max-new-tokens", MAX_NEW, "--limit", str(LIMIT), "--no-progress", *extra]


def test_openai_backend_writes_the_records_of_the_in_process_backend(
    mmad_root, tiny_model_dir, server, tmp_path
):
    local_out, served_out = tmp_path / "local.jsonl", tmp_path / "served.jsonl"
    local_args = ["--mmad-root", str(mmad_root), "--out", str(local_out), "--checkpoint", str(tiny_model_dir)]
    local_args += ["--max-new-tokens", MAX_NEW, "--limit", str(LIMIT), "--no-progress", "--device", "cpu"]
    run(build_parser().parse_args(local_args), loaded=(server.model, server.processor))
    result = run(build_parser().parse_args(served_args(mmad_root, served_out, server.base_url)))
    assert result.asked == LIMIT and server.calls == LIMIT

    local, served = read_records([local_out]), read_records([served_out])
    assert [r.question_key for r in served] == [r.question_key for r in local]
    for a, b in zip(local, served, strict=True):
        assert (b.raw, b.predicted, b.cells, b.templates, b.prompt) == (
            a.raw,
            a.predicted,
            a.cells,
            a.templates,
            a.prompt,
        )
    assert all(r.extra["config"]["backend"] == "openai" and r.checkpoint == "tiny" for r in served)
    assert all(r.extra["base_url"] == server.base_url for r in served)
    assert "backend" not in local[0].extra["config"]  # files written before the option resume as before
    # the same protocol on the wire: greedy, the token budget
    assert {(req.body["temperature"], req.body["max_tokens"]) for req in server.requests} == {
        (0.0, int(MAX_NEW))
    }


def test_two_urls_share_the_questions_with_bounded_concurrency(mmad_root, tiny, tiny_model_dir, tmp_path):
    out = tmp_path / "two.jsonl"
    with (
        make_server(tiny, tiny_model_dir, parallel=4) as one,
        make_server(tiny, tiny_model_dir, parallel=4) as two,
    ):
        one.token_delay_s = two.token_delay_s = 0.01
        run(
            build_parser().parse_args(
                served_args(mmad_root, out, one.base_url, two.base_url, extra=("--concurrency", "2"))
            )
        )
        records = read_records([out])
        assert len(records) == LIMIT == one.calls + two.calls  # each question asked once
        assert one.calls >= 1 and two.calls >= 1
        assert {r.extra["base_url"] for r in records} == {one.base_url, two.base_url}
        assert 1 <= one.max_in_flight <= 2 and 1 <= two.max_in_flight <= 2


def test_a_second_run_against_another_backend_is_refused(mmad_root, tiny_model_dir, server, tmp_path):
    out = tmp_path / "mixed.jsonl"
    run(build_parser().parse_args(served_args(mmad_root, out, server.base_url, extra=("--limit", "2"))))
    local = ["--mmad-root", str(mmad_root), "--out", str(out), "--checkpoint", "tiny"]
    local += ["--max-new-tokens", MAX_NEW, "--limit", "4", "--no-progress"]
    with pytest.raises(EvalError, match="backend: 'openai' in the file vs None now"):
        run(build_parser().parse_args(local))


@pytest.mark.slow
def test_killed_midway_resumes_with_nothing_lost_or_repeated(mmad_root, server, tmp_path):
    out = tmp_path / "killed.jsonl"
    server.token_delay_s = 0.03
    limit = 16
    args = served_args(mmad_root, out, server.base_url, extra=("--limit", str(limit), "--batch-size", "2"))
    partial = kill_eval_midway(list(args), out, after=4, timeout_s=120)
    assert 4 <= len(partial) < limit

    server.token_delay_s = 0.0
    result = run(build_parser().parse_args(args))
    assert result.already_done == len(partial) and result.asked == limit - len(partial)
    keys = [r.question_key for r in read_records([out])]
    assert len(keys) == len(set(keys)) == limit


def test_a_server_that_is_down_stops_the_run_before_it_starts(mmad_root, tmp_path, capsys):
    out = tmp_path / "down.jsonl"
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert eval_main(served_args(mmad_root, out, url)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"judo eval: The server at {url} cannot be reached") and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.garbage(), "not an OpenAI chat completion"),
        (Fault.http(400, "prompt too long"), "HTTP 400"),
        (Fault.timeout(3), "did not answer within 0.5 s"),
    ],
    ids=["garbage", "400", "timeout"],
)
def test_a_failing_server_stops_the_run_with_one_sentence_and_keeps_the_records(
    mmad_root, server, tmp_path, capsys, fault, message
):
    out = tmp_path / "fails.jsonl"
    server.faults = lambda index, body: fault if index >= 3 else None
    args = served_args(
        mmad_root, out, server.base_url, extra=("--batch-size", "1", "--concurrency", "1", "--timeout", "0.5")
    )
    assert eval_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "records so far are kept" in err and "\n" not in err
    assert len(read_records([out])) == 3
    server.faults = None
    assert eval_main(args) == 0 and len(read_records([out])) == LIMIT

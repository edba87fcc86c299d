"""Honest failures without a server: config errors name file and line, a taken port fails fast, a checkpoint
that cannot feed images is unavailable, eval's damaged inputs are one sentence, messages hide server paths."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image
from pydantic import ValidationError

from judo.engines import ConfigError, build_engines, load_config
from judo.engines.base import InspectionRequest
from tests.app_server import EXAMPLES, REPO

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"
APP_YAML = (REPO / "configs" / "app.yaml").read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDO_", "GRADIO_SERVER"))}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), **extra)
    return env


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "old, new, field, phrase",
    [
        ("max_size: 16 ", "max_size: lots ", "queue.max_size", "must be an integer (got 'lots')"),
        (
            "max_file_size: 25mb",
            'max_file_size: "twenty megs"',
            "queue.max_file_size",
            "must be a size like 25mb",
        ),
        ("kind: comparator", "kind: laser", "engine 'comparator' kind", "must be one of qwen, comparator"),
        (
            "max_new_tokens: 768\n    description: Juxtaposed",
            "max_new_tokens: 1e9\n    description: Juxtaposed",
            "engine 'judo' max_new_tokens",
            "must be an integer",
        ),
        (
            "prompt_style: think\n    rag: true",
            "prompt_style: thinking\n    rag: true",
            "engine 'base-grpo-rag' prompt_style",
            "must be one of",
        ),
        ("concurrency_limit: 1 ", "concurrency_limit: 0 ", "queue.concurrency_limit", "must be >= 1"),
    ],
    ids=["integer", "size", "kind", "float-for-int", "literal", "bound"],
)
def test_config_value_errors_name_file_line_and_field(tmp_path, old, new, field, phrase):
    assert old in APP_YAML
    text = APP_YAML.replace(old, new, 1)
    path = tmp_path / "app.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    line = _line_of(text, new.split("\n")[0].strip())
    assert message.startswith(f"{path}, line {line}: {field} "), message
    assert phrase in message and message.count("\n") == 0 and message.endswith(".")


def test_config_file_level_errors(tmp_path):
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes(b"title: JUDO\nlabel: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.yaml, line 2: the file is not UTF-8 text"):
        load_config(binary, env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: x\nengines: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml, line 3: not valid YAML"):
        load_config(broken, env={})
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listed, env={})


def test_env_overrides_are_typed_and_named():
    cfg = load_config(
        REPO / "configs" / "app.yaml",
        env={
            "JUDO_ENGINE_JUDO_DO_SAMPLE": "yes",
            "JUDO_ENGINE_JUDO_QUANTIZATION": "none",
            "JUDO_LIMITS_LOGIN_PER_CLIENT": "5 per 30 seconds",
            "JUDO_LIMITS_UPLOAD_FOLDER_CAP": "1gb",
        },
    )
    judo = cfg.engine("judo")
    assert judo.do_sample is True and judo.quantization is None
    assert cfg.limits.login_per_client == "5 per 30 seconds" and cfg.limits.upload_folder_cap == 1024**3
    for key, value, phrase in [
        ("JUDO_QUEUE_SIZE", "lots", "queue.max_size must be an integer"),
        ("JUDO_ENGINE_JUDO_DO_SAMPLE", "perhaps", "do_sample must be true or false"),
        ("JUDO_LIMITS_UPLOAD_PER_CLIENT", "lots", "must be an upload rate"),
    ]:
        with pytest.raises(ConfigError, match=f"^{key}: .*{phrase}"):
            load_config(REPO / "configs" / "app.yaml", env={key: value})


def test_engine_kinds_are_a_union_by_kind():
    cfg = load_config(REPO / "configs" / "app.yaml", env={})
    kinds = {e.id: type(e).__name__ for e in cfg.engines}
    assert kinds == {
        "judo": "QwenEngineConfig",
        "base-grpo-rag": "QwenEngineConfig",
        "base-grpo": "QwenEngineConfig",
        "comparator": "ComparatorEngineConfig",
    }
    with pytest.raises(ValidationError):
        cfg.queue.max_size = "lots"  # assignments are checked like the file's values


@pytest.mark.parametrize("entry", ["app.py", "judo"])
def test_app_config_error_is_one_sentence_and_exit_2(tmp_path, entry):
    bad = tmp_path / "bad.yaml"
    bad.write_text(APP_YAML.replace("max_size: 16 ", "max_size: lots "), encoding="utf-8")
    cmd = [sys.executable, "app.py"] if entry == "app.py" else [sys.executable, "-m", "judo.cli", "app"]
    done = subprocess.run(
        cmd,
        check=False,
        cwd=REPO,
        env=_env(JUDO_CONFIG=str(bad)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert f"bad.yaml, line {_line_of(APP_YAML, 'max_size: 16 ')}: queue.max_size" in lines[0]


# -------------------------------------------------------------------------------------------- port
@pytest.mark.parametrize("entry", ["app.py", "judo"])
def test_taken_port_fails_fast_before_loading_models(entry):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if entry == "app.py":
            cmd, env = [sys.executable, "app.py"], _env(GRADIO_SERVER_PORT=str(port))
        else:
            cmd, env = [sys.executable, "-m", "judo.cli", "app", "--port", str(port)], _env()
        env["JUDO_CONFIG"] = str(REPO / "configs" / "tiny.yaml")
        env["JUDO_TINY_DIR"] = "/nonexistent/never-built"  # loading a model would try to build it here
        t0 = time.perf_counter()
        done = subprocess.run(
            cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is already in use" in lines[0], done.stderr
    assert "engine" not in done.stderr and "building" not in done.stderr  # no model was touched
    assert time.perf_counter() - t0 < 60


def test_port_problem_direct():
    from judo.app.server import port_problem, serve_address

    assert port_problem("127.0.0.1", 0) is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert port_problem("127.0.0.1", free) is None
    os.environ.pop("GRADIO_SERVER_PORT", None)
    assert serve_address(None, None)[1] == 7860


# ------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_without_tokenizer_json_is_unavailable_with_the_reason(tiny_model_dir, tmp_path):
    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "tokenizer.json").unlink()
    cfg = load_config(
        REPO / "configs" / "tiny.yaml",
        env={"JUDO_ENGINES": "tiny,comparator", "JUDO_ENGINE_TINY_CHECKPOINT": str(broken)},
    )
    engines = build_engines(cfg)
    assert not engines[0].available and "tokenizer.json" in engines[0].reason, engines[0].reason
    assert engines[1].available


def test_checkpoint_without_chat_template_is_unavailable(tiny_model_dir, tmp_path):
    broken = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, broken)
    for path in broken.glob("chat_template.*"):  # .jinja or .json, as the processor saved it
        path.unlink()
    for name in ("tokenizer_config.json", "processor_config.json"):  # a template may be stored inline too
        path = broken / name
        if path.is_file():
            import json

            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("chat_template", None)
            path.write_text(json.dumps(data), encoding="utf-8")
    cfg = load_config(
        REPO / "configs" / "tiny.yaml",
        env={"JUDO_ENGINES": "tiny", "JUDO_ENGINE_TINY_CHECKPOINT": str(broken)},
    )
    engine = build_engines(cfg)[0]
    assert not engine.available and "chat template" in engine.reason


# ------------------------------------------------------------------------------------ eval errors
def _eval(argv, capsys):
    from judo.evaluate.run import main as eval_main

    rc = eval_main(argv)
    return rc, capsys.readouterr().err


def test_eval_truncated_safetensors_is_one_sentence(mmad_root, tiny_model_dir, tmp_path, capsys):
    broken = tmp_path / "cut"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    rc, err = _eval(
        [
            "--mmad-root",
            str(mmad_root),
            "--out",
            str(tmp_path / "r.jsonl"),
            "--limit",
            "1",
            "--checkpoint",
            str(broken),
            "--no-progress",
        ],
        capsys,
    )
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Loading weights")]
    assert rc == 2 and "Traceback" not in err and len(lines) == 1, err
    assert "damaged or incomplete" in lines[0] and "cut" in lines[0]


def test_eval_corrupt_line_mid_records_is_one_sentence(mmad_root, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    base = [
        "--mmad-root",
        str(mmad_root),
        "--out",
        str(out),
        "--engine",
        "comparator",
        "--types",
        "Anomaly Detection",
        "--no-progress",
    ]
    rc, _ = _eval([*base, "--limit", "3"], capsys)
    assert rc == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # a damaged line in the middle (not a torn tail)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = out.read_bytes()
    rc, err = _eval([*base, "--limit", "4"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.strip()] == [err.strip()]
    assert f"{out}:2: not a JSON line" in err and out.read_bytes() == before  # nothing lost, nothing added


# ------------------------------------------------------------------------------------------ inputs
def test_messages_hide_server_paths():
    from judo.app.inputs import hide_paths

    assert (
        hide_paths("cannot open /tmp/gradio/3f2a/mask.txt: not an image")
        == "cannot open mask.txt: not an image"
    )
    assert hide_paths("see C:\\Users\\lab\\data\\x.png") == "see x.png"
    assert hide_paths("A. Yes. / B. No.") == "A. Yes. / B. No."
    assert hide_paths("pass/fail/unknown") == "pass/fail/unknown"


def test_mask_that_is_not_an_image_names_no_path(tmp_path):
    from judo.app.inputs import prepare_inputs

    mask = tmp_path / "deep" / "folder" / "mask.png"
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"not a picture")
    prep = prepare_inputs(
        str(QUERY), str(TEMPLATE), "Is there any defect?", "A. Yes.\nB. No.", "bottle", str(mask), ""
    )
    note = next(n for n in prep.notes if "mask was ignored" in n)
    assert str(tmp_path) not in note and "mask.png" in note


@pytest.mark.parametrize(
    "args, phrase",
    [
        (("abc", False, 0.7, 0.9), "Max new tokens must be a number, got 'abc'"),
        ((10**9, False, 0.7, 0.9), "must be between 1 and 4096"),
        ((64, True, "hot", 0.9), "Temperature must be a number"),
        ((64, True, 0, 0.9), "Temperature must be > 0"),
    ],
)
def test_generation_settings_are_checked(args, phrase):
    from judo.app.inputs import InputProblem, settings_from

    with pytest.raises(InputProblem, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        settings_from(*args)


def test_options_are_capped_in_count_and_length():
    from judo.inputs import MAX_OPTION_CHARS, OptionsError, parse_options

    t0 = time.perf_counter()
    with pytest.raises(OptionsError, match="Option A is too long"):
        parse_options("A. " + "x" * 1_000_000 + "\nB. No.")
    with pytest.raises(OptionsError, match="at most 5"):
        parse_options("\n".join(f"{c}. o" for c in "ABCDEF"))
    assert time.perf_counter() - t0 < 0.5
    assert parse_options("A. " + "x" * MAX_OPTION_CHARS + "\nB. No.")["A"] == "x" * MAX_OPTION_CHARS


def test_prompt_over_the_token_cap_is_refused_before_prefill(tiny_model_dir):
    from judo.engines.pool import ModelPool, build_engine

    cfg = load_config(
        REPO / "configs" / "tiny.yaml",
        env={
            "JUDO_ENGINES": "tiny",
            "JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir),
            "JUDO_ENGINE_TINY_MAX_PROMPT_TOKENS": "64",
        },
    )
    engine = build_engine(cfg.engines[0], ModelPool(device="cpu"))
    request = InspectionRequest(
        Image.open(QUERY), Image.open(TEMPLATE), "Is there any defect?", {"A": "Yes.", "B": "No."}
    )
    final = list(engine.stream(request))[-1]
    assert final.done and final.text == ""
    assert final.error.startswith("The prompt is ") and "limit of 64" in final.error


def test_unwritable_records_folder_still_returns_the_result(tmp_path):
    from judo.app.api import InspectForm
    from judo.app.downloads import check_records_dir
    from judo.app.runner import Runner
    from judo.engines.comparator import ComparatorEngine

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    folder = blocker / "records"  # below a file: cannot be created, even by root
    assert "not writable" in check_records_dir(folder)
    runner = Runner([ComparatorEngine(id="comparator", label="Comparator")], 0.05, folder)
    form = InspectForm(
        str(QUERY),
        str(TEMPLATE),
        "Is there any defect in the object?",
        "A. Yes.\nB. No.",
        "comparator",
        "bottle",
    )
    final = list(runner.inspect(form))[-1]
    status, result, record, png = final.status, final.result, final.record, final.overlay_png
    assert result["done"] and result["error"] is None and result["answer"] in {"A", "B"}
    assert record is None and png is None
    assert "could not be saved" in status and str(tmp_path) not in status and "a-file" not in status

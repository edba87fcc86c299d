"""The ``history:`` settings (judo.engines.config): defaults, the Space rule, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from judo.engines.config import ConfigError, data_dir, load_config

REPO = Path(__file__).resolve().parents[1]
ENGINES = "engines:\n  - {id: comparator, kind: comparator, label: Comparator}\n"


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "configs").mkdir(exist_ok=True)
    p = tmp_path / "configs" / "app.yaml"
    p.write_text(ENGINES + text, encoding="utf-8")
    return p


def test_the_shipped_file_logs_into_the_users_data_folder(tmp_path):
    env = {"HOME": str(tmp_path / "home")}
    h = load_config(REPO / "configs" / "app.yaml", env=env).history
    assert h.enabled is True and h.retention_days == 365
    assert h.path == str(tmp_path / "home" / ".local" / "share" / "judo-inspector" / "inspections.sqlite")
    h = load_config(
        REPO / "configs" / "app.yaml", env={**env, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    ).history
    assert h.path == str(tmp_path / "xdg" / "judo-inspector" / "inspections.sqlite")
    h = load_config(
        REPO / "configs" / "app.yaml", env={**env, "XDG_DATA_HOME": "relative/is/ignored"}
    ).history
    assert h.path.startswith(str(tmp_path / "home" / ".local" / "share"))
    h = load_config(REPO / "configs" / "app.yaml", env={**env, "JUDO_DATA_DIR": str(tmp_path / "d")}).history
    assert h.path == str(tmp_path / "d" / "inspections.sqlite")
    assert data_dir({"JUDO_DATA_DIR": str(tmp_path / "d")}) == tmp_path / "d"


def test_off_on_a_space_unless_switched_on(tmp_path):
    space = {"HOME": str(tmp_path), "SPACE_ID": "someone/judo"}
    assert load_config(_write(tmp_path, ""), env=space).history.enabled is False
    assert load_config(_write(tmp_path, "history: {enabled: true}\n"), env=space).history.enabled is True
    assert load_config(_write(tmp_path, ""), env={**space, "JUDO_HISTORY_ENABLED": "true"}).history.enabled
    assert not load_config(_write(tmp_path, ""), env={"JUDO_HISTORY_ENABLED": "false"}).history.enabled


def test_path_and_retention_from_the_file_and_the_environment(tmp_path):
    cfg = load_config(_write(tmp_path, "history:\n  path: data/log.sqlite\n  retention_days: null\n"), env={})
    assert cfg.history.path == str(tmp_path / "data" / "log.sqlite")  # relative to the project folder
    assert cfg.history.retention_days is None
    env = {"JUDO_HISTORY_PATH": str(tmp_path / "x.sqlite"), "JUDO_HISTORY_RETENTION_DAYS": "30"}
    h = load_config(_write(tmp_path, ""), env=env).history
    assert (h.path, h.retention_days) == (str(tmp_path / "x.sqlite"), 30)
    assert (
        load_config(_write(tmp_path, ""), env={"JUDO_HISTORY_RETENTION_DAYS": "none"}).history.retention_days
        is None
    )


def test_wrong_values_name_the_file_and_line(tmp_path):
    p = _write(tmp_path, "history:\n  enabled: sometimes\n")
    with pytest.raises(ConfigError, match=r"app.yaml, line 4: history.enabled must be true or false"):
        load_config(p, env={})
    p = _write(tmp_path, "history:\n  retention_days: 0\n")
    with pytest.raises(ConfigError, match=r"line 4: history.retention_days must be > 0\.0 \(got 0\)"):
        load_config(p, env={})
    p = _write(tmp_path, "history:\n  keep: forever\n")
    with pytest.raises(ConfigError, match=r"line 4: history.keep is an unknown field"):
        load_config(p, env={})
    with pytest.raises(
        ConfigError, match=r"JUDO_HISTORY_RETENTION_DAYS: history.retention_days must be a number"
    ):
        load_config(_write(tmp_path, ""), env={"JUDO_HISTORY_RETENTION_DAYS": "a year"})

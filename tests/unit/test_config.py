"""Settings: YAML file, FLASHER_* overrides, secrets from files, one message per bad field."""

from __future__ import annotations

from pathlib import Path

import pytest

from flasher.config import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FLASHER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flasher.yaml"
    path.write_text(text)
    return path


def test_defaults_load_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert str(settings.inventory.url) == "http://127.0.0.1:8800/"
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
    assert settings.queue.lease_seconds == 120


def test_the_shipped_example_config_is_valid() -> None:
    settings = load_settings(Path("config/flasher.yaml"))
    assert settings.step("install").attempts == 1
    assert settings.step("connect").timeout == 60  # a default kept beside the file's two steps


def test_environment_overrides_yaml_with_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "inventory:\n  url: http://inventory.example:8000\n  page_size: 50\n")
    monkeypatch.setenv("FLASHER_INVENTORY__URL", "http://other.example:9000")
    monkeypatch.setenv("FLASHER_REDIS__URL", "redis://10.0.0.1:6380/2")
    settings = load_settings(path)
    assert str(settings.inventory.url) == "http://other.example:9000/"
    assert settings.inventory.page_size == 50  # from the file, not overridden
    assert settings.redis.url == "redis://10.0.0.1:6380/2"


def test_every_bad_field_gets_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "inventory:\n  url: not-a-url\n  page_size: 5000\n  tokne: x\nredis:\n  url: http://x\n"
        "service:\n  concurrency: 0\n",
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    lines = caught.value.lines
    assert any(line.startswith("inventory.url:") and "not-a-url" in line for line in lines)
    assert any(line.startswith("inventory.page_size:") and "5000" in line for line in lines)
    assert "inventory.tokne: unknown setting" in lines
    assert any(line.startswith("redis.url:") for line in lines)
    assert any(line.startswith("service.concurrency:") for line in lines)
    assert len(lines) == 5


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_yaml_that_does_not_parse_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        load_settings(write(tmp_path, "inventory: [unclosed\n"))


def test_secret_read_from_file_and_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("very-secret-token\n")
    settings = load_settings(write(tmp_path, f"inventory:\n  auth: token\n  token_file: {secret}\n"))
    assert settings.inventory.token is not None
    assert settings.inventory.token.get_secret_value() == "very-secret-token"
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in str(settings.model_dump())


def test_secret_in_a_bad_field_is_not_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHER_REDIS__PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError) as caught:
        load_settings(write(tmp_path, "redis:\n  url: redis://127.0.0.1:6379/0\n"))
    assert any("cannot read secret file" in line for line in caught.value.lines)


def test_auth_needs_its_credentials(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="oauth2 lacks token_url, client_id, client_secret"):
        load_settings(write(tmp_path, "inventory:\n  auth: oauth2\n"))
    with pytest.raises(SettingsError, match="neither token nor token_file"):
        load_settings(write(tmp_path, "inventory:\n  auth: token\n"))


def test_unknown_step_is_named() -> None:
    with pytest.raises(KeyError, match="no policy for step 'nope'"):
        Settings().step("nope")

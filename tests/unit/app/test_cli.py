"""The operator commands: migrate, check-config, create-user, create-api-key."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.cli import main
from app.factory import create_app
from app.settings import load_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    main(["migrate"])
    return url


def test_check_config_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSION_HASH_SECRET", "a-very-secret-value-of-some-length-1234")
    main(["check-config"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["SESSION_HASH_SECRET"] == "***"
    assert "a-very-secret-value" not in json.dumps(shown)


def test_check_config_exits_2_on_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKERS", "many")
    with pytest.raises(SystemExit) as info:
        main(["check-config"])
    assert info.value.code == 2
    assert "WORKERS" in capsys.readouterr().err


def test_create_user_then_key_that_authenticates(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    main(["create-user", "Ops@Example.com", "--name", "Ops", "--password-stdin"])
    user_id = capsys.readouterr().out.strip()
    main(["create-api-key", "ops@example.com", "--name", "ci", "--scope", "tasks:read"])
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("thk_")

    app = create_app(load_settings(environ={"DATABASE_URL": database}, dotenv_path=None))
    with TestClient(app) as client:
        me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
        write = client.post(
            "/v1/tasks", json={"title": "x"}, headers={"Authorization": f"Bearer {secret}"}
        )
    assert me.status_code == 200
    assert me.json()["id"] == user_id
    assert write.status_code == 403  # the key holds tasks:read only


def test_create_user_refuses_a_short_password(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(SystemExit) as info:
        main(["create-user", "a@example.com", "--password-stdin"])
    assert info.value.code == 1
    assert "password" in capsys.readouterr().err


def test_create_api_key_for_an_unknown_user_fails(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["create-api-key", "nobody@example.com", "--name", "x", "--scope", "tasks:read"])
    assert info.value.code == 1
    assert "nobody@example.com" in capsys.readouterr().err

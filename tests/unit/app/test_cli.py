"""The operator commands: migrate, check-config, create-user, create-api-key."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.cli import build_parser, main
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


def test_migrate_says_what_it_did(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/m.db")
    main(["migrate"])
    out = capsys.readouterr().out
    assert out.startswith("taskhub: database migrated to head")
    assert out.count("\n") == 1


@pytest.fixture
def refused_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://ops:hunter2-secret@127.0.0.1:1/x")


@pytest.mark.usefixtures("refused_database")
def test_a_failed_migrate_is_one_line_naming_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["migrate"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("taskhub: migrate failed: ")
    assert "refused" in err.lower() or "connect" in err.lower()
    assert "Traceback" not in err
    assert "hunter2-secret" not in err
    assert "--verbose" in err


@pytest.mark.usefixtures("refused_database")
def test_migrate_verbose_shows_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["migrate", "--verbose"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "hunter2-secret" not in err


def test_check_config_shows_the_effective_log_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    main(["check-config"])
    assert json.loads(capsys.readouterr().out)["LOG_FORMAT"] == "console"


def test_a_bad_expires_at_names_the_option(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "create-api-key",
                "nobody@example.com",
                "--name",
                "ci",
                "--scope",
                "tasks:read",
                "--expires-at",
                "tomorrow",
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--expires-at" in err
    assert "'tomorrow'" in err
    assert "isoformat" not in err


def test_serve_help_says_where_host_port_and_workers_come_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for name in ("HOST", "PORT", "WORKERS"):
        assert name in out


@pytest.mark.parametrize(
    "command", ["serve", "migrate", "check-config", "create-user", "create-api-key"]
)
def test_every_subcommand_has_a_description(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    _usage, _, rest = capsys.readouterr().out.partition("\n\n")
    description = rest.split("\n\n", 1)[0]
    assert not description.startswith(("positional arguments", "options")), rest
    assert len(description.split()) >= 5


def test_documented_cli_examples_parse() -> None:
    """Every `taskhub <command> ...` example in the README and docs is one the CLI accepts."""
    root = Path(__file__).resolve().parents[3]
    examples: list[str] = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            at = line.find("taskhub create-")
            example = line[at:].split("`")[0].split("#")[0].strip() if at >= 0 else ""
            if len(example.split()) > 2:  # a usage line, not a bare mention of the command
                examples.append(example)
    assert examples
    parser = build_parser()
    for example in examples:
        # Optional parts ([...]) left out; an elided scope (`--scope ...`) stands for one.
        words = re.sub(r"\[[^\]]*\]", "", example).split()[1:]
        words = ["tasks:read" if w == "..." else w for w in words]
        try:
            parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"documented example does not parse: {example}")


def test_create_api_key_takes_every_scope_and_repeatable_projects() -> None:
    from domain.auth import Scope

    parser = build_parser()
    for scope in Scope:
        args = parser.parse_args(
            ["create-api-key", "a@example.com", "--name", "n", "--scope", scope]
        )
        assert args.scope == [scope.value]
        assert args.projects is None
    base = ["create-api-key", "a@example.com", "--name", "n", "--scope", "tasks:read"]
    args = parser.parse_args([*base, "--project", "p1", "--project", "p2"])
    assert args.projects == ["p1", "p2"]


def test_create_api_key_restricted_to_a_project(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from app.container import build_container, close_container

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    main(["create-user", "ops@example.com", "--password-stdin"])
    user_id = capsys.readouterr().out.strip()
    base = ["create-api-key", "ops@example.com", "--name", "ci", "--scope", "projects:read"]
    with pytest.raises(SystemExit) as info:
        main([*base, "--project", "01890000-0000-7000-8000-000000000000"])
    assert info.value.code == 1
    assert "project_ids[0]" in capsys.readouterr().err

    async def inbox_id() -> str:
        settings = load_settings(environ={"DATABASE_URL": database}, dotenv_path=None)
        container = build_container(settings)
        try:
            async with container.uow() as uow:
                inbox = await uow.projects.inbox_of(user_id)
        finally:
            await close_container(container)
        assert inbox is not None
        return inbox.id

    inbox = asyncio.run(inbox_id())
    main([*base, "--project", inbox])
    secret = capsys.readouterr().out.strip()
    app = create_app(load_settings(environ={"DATABASE_URL": database}, dotenv_path=None))
    with TestClient(app) as client:
        listed = client.get("/v1/projects", headers={"Authorization": f"Bearer {secret}"})
        keys = client.get("/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert [p["id"] for p in listed.json()["items"]] == [inbox]
    assert keys.status_code == 200


def test_rotate_encryption_key_moves_webhook_secrets_to_the_first_key(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.security.crypto import FernetCipher

    old, new = FernetCipher.generate_key(), FernetCipher.generate_key()
    monkeypatch.setenv("ENCRYPTION_KEY", old)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    main(["create-user", "hooks@example.com", "--password-stdin"])
    main(["create-api-key", "hooks@example.com", "--name", "h", "--scope", "webhooks:manage"])
    key = capsys.readouterr().out.split()[-1]
    env = {"DATABASE_URL": database, "ENCRYPTION_KEY": old}
    with TestClient(create_app(load_settings(environ=env, dotenv_path=None))) as client:
        made = client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/h", "events": ["task.*"]},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]

    monkeypatch.setenv("ENCRYPTION_KEY", f"{new},{old}")
    main(["rotate-encryption-key"])
    assert "1 webhooks" in capsys.readouterr().out

    import sqlite3

    path = database.removeprefix("sqlite+aiosqlite:///")
    [(stored,)] = sqlite3.connect(path).execute("SELECT secret FROM webhooks").fetchall()
    assert FernetCipher(new).decrypt(stored) == secret
    with pytest.raises(ValueError, match="another key"):
        FernetCipher(old).decrypt(stored)

"""A served app loads neither the optional integrations structlog and dependency-injector look
for (rich, pydantic, werkzeug, starlette's requests) nor the webhook client (httpx) or the cipher
(cryptography's Fernet) until it needs them; the hidden packages stay importable afterwards."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from app.lean_imports import hidden
from tests.unit.http.conftest import run_probe

# Requests go to the ASGI app by hand: Litestar's test client is httpx's.
PROBE = """
import asyncio, json, sys
from app.factory import create_app
from app.settings import load_settings

LEFT_OUT = ("rich", "pydantic", "pydantic_settings", "werkzeug", "starlette.requests", "httpx",
            "httpcore", "cryptography.fernet")

async def get(app, path):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"probe")], "client": ("127.0.0.1", 1),
             "server": ("probe", 80), "state": {}}
    await app(scope, receive, send)
    return sent[0]["status"]

async def main():
    app = create_app(load_settings(dotenv_path=None))
    async with app.lifespan():
        health = await get(app, "/health")
        unauthorized = await get(app, "/v1/tasks")
        served = [m for m in LEFT_OUT if m in sys.modules]
    import structlog.dev
    import pydantic
    from adapters.security.crypto import FernetCipher
    cipher = FernetCipher(FernetCipher.generate_key())
    print(json.dumps({
        "statuses": [health, unauthorized],
        "served": served,
        "structlog_rich": structlog.dev.rich is not None,
        "pydantic": pydantic.VERSION.split(".")[0],
        "cipher": cipher.decrypt(cipher.encrypt("s3cret")),
    }))

asyncio.run(main())
"""


def test_a_served_app_loads_no_optional_integration_nor_webhook_client_nor_cipher() -> None:
    seen = run_probe(PROBE)
    assert seen["statuses"] == [200, 401]
    assert seen["served"] == []
    assert seen["structlog_rich"] is False
    assert seen["pydantic"] == "2"
    assert seen["cipher"] == "s3cret"


def test_a_hidden_package_fails_to_import_inside_the_block_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "lean_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "part.py").write_text("PART = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with hidden(["lean_probe_pkg"]), pytest.raises(ModuleNotFoundError, match="lean_probe_pkg"):
        importlib.import_module("lean_probe_pkg.part")
    assert "lean_probe_pkg" not in sys.modules
    assert importlib.import_module("lean_probe_pkg.part").PART == 2
    sys.modules.pop("lean_probe_pkg.part")
    sys.modules.pop("lean_probe_pkg")


def test_a_package_imported_before_is_not_hidden() -> None:
    with hidden(["json"]):
        import json as again

    assert again is json

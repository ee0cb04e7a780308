"""The MCP endpoint's settings: where it says it is, which hosts it answers, and switching it
off."""

from __future__ import annotations

import pytest

from app.mcp import mcp_config
from app.settings import SettingsError, load_settings
from tests.unit.mcp.conftest import serving


def config(**env: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    found = mcp_config(load_settings(env, dotenv_path=None), 1024)
    return found.resource_url, tuple(found.allowed_hosts), tuple(found.allowed_origins)


def test_the_public_url_names_the_endpoint_and_its_host_and_origin() -> None:
    url, hosts, origins = config(
        PUBLIC_URL="https://tasks.example.com",
        ROOT_PATH="/taskhub",
        MCP_ALLOWED_HOSTS="svc.internal:8000, other",
        CORS_ORIGINS="https://app.example.com",
    )
    assert url == "https://tasks.example.com/taskhub/mcp"
    assert {"tasks.example.com", "tasks.example.com:*", "svc.internal:8000", "other"} <= set(hosts)
    assert "localhost:*" in hosts
    assert {"https://tasks.example.com", "https://app.example.com"} <= set(origins)


def test_without_a_public_url_the_endpoint_is_named_by_host_and_port() -> None:
    assert config(HOST="0.0.0.0", PORT="9000")[0] == "http://localhost:9000/mcp"  # noqa: S104
    assert config(HOST="::1", PORT="9000")[0] == "http://[::1]:9000/mcp"


@pytest.mark.parametrize(
    "value", ["tasks.example.com", "https://tasks.example.com/", "ftp://x", "https://x/path"]
)
def test_a_public_url_with_a_path_or_another_scheme_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        load_settings({"PUBLIC_URL": value}, dotenv_path=None)


async def test_switched_off_the_endpoint_is_not_served() -> None:
    async with serving(MCP_ENABLED="false") as mcp:
        _, session = await mcp.account()
        answer = await mcp.http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {session}"},
        )
        document = await mcp.http.get("/.well-known/oauth-protected-resource/mcp")
    assert answer.status_code == 404
    assert document.status_code == 404


async def test_a_foreign_origin_is_refused() -> None:
    async with serving() as mcp:
        _, session = await mcp.account()
        answer = await mcp.http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={
                "Authorization": f"Bearer {session}",
                "Origin": "https://evil.example",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
        )
    assert answer.status_code == 403

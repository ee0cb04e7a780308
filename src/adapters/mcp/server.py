"""The MCP endpoint: the SDK's server (Streamable HTTP, stateless, JSON answers) with Taskhub's
tools, behind the admission gate, as one ASGI app to mount at `/mcp`.

Stateless, so any worker or replica answers any request, in both protocol eras. The sealing keys
of multi-round-trip `requestState` are derived from a configured secret and the server has a
fixed name, so every replica opens what another sealed. The SDK's DNS-rebinding protection
checks `Host` and `Origin` against the configured public host names.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateSecurity
from mcp.server.transport_security import TransportSecuritySettings

from adapters.mcp.exchange import SingleExchange
from adapters.mcp.gate import ADMITTED, AdmittedTokens, McpGate
from adapters.mcp.services import McpServices
from adapters.mcp.tools import TOOLS, ToolSpec, answers

SERVER_NAME = "taskhub"
PROTOCOL_VERSIONS = ("2026-07-28", "2025-11-25")
INSTRUCTIONS = (
    "Taskhub keeps the user's tasks. Call whoami first to see the user and what this "
    "credential may do. find-tasks lists and searches; add-tasks, update-tasks and "
    "complete-tasks change tasks in batches of up to 50, and report each item. Pass a task's "
    "etag as if_match to update-tasks so a change made meanwhile is not overwritten. Tasks "
    "live in projects: find-projects lists them (add-project makes one); find-comments and "
    "add-comment read and write a task's comments."
)


@dataclass(frozen=True, slots=True)
class McpConfig:
    """`resource_url`: the endpoint's public URL (`https://host/mcp`, root path included).
    `allowed_hosts` / `allowed_origins`: what `Host` and `Origin` may say (`host:*` for any
    port; a host `*` turns the check off). `state_secret`: the secret the requestState sealing
    key is derived from (the same on every replica). `max_body_bytes`: the largest request
    body."""

    resource_url: str
    allowed_hosts: Sequence[str]
    allowed_origins: Sequence[str]
    state_secret: bytes
    max_body_bytes: int
    documentation_url: str | None = None


def _visible(spec: ToolSpec, scopes: frozenset[Any]) -> bool:
    return spec.scope is None or spec.scope in scopes


async def _tools_for_scopes(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """`tools/list` shows only the tools the credential's scopes allow."""
    result = await call_next(ctx)
    if ctx.method != "tools/list" or not isinstance(result, dict):
        return result
    admitted = ADMITTED.get()
    scopes: frozenset[Any] = admitted.principal.scopes if admitted is not None else frozenset()
    allowed = {spec.name for spec in TOOLS if _visible(spec, scopes)}
    # The chain answers with the wire form: {"tools": [{"name": ...}, ...], ...}.
    tools = [t for t in result.get("tools", ()) if t.get("name") in allowed]
    return {**result, "tools": tools}


def state_keys(secret: bytes) -> list[bytes]:
    """The requestState sealing key: derived from the secret, never the secret itself."""
    return [hmac.new(secret, b"taskhub mcp request-state v1", hashlib.sha256).digest()]


class McpEndpoint:
    """The ASGI app to mount and the lifespan it needs (the SDK's session manager)."""

    def __init__(self, services: McpServices, config: McpConfig) -> None:
        self.config = config
        self.server: MCPServer[Any] = MCPServer(
            SERVER_NAME,
            title="Taskhub",
            instructions=INSTRUCTIONS,
            token_verifier=AdmittedTokens(),
            auth=AuthSettings(
                issuer_url=_origin(config.resource_url),  # type: ignore[arg-type]
                resource_server_url=config.resource_url,  # type: ignore[arg-type]
                validate_token_resource=False,
            ),
            request_state_security=RequestStateSecurity(keys=state_keys(config.state_secret)),
            middleware=[_tools_for_scopes],
            log_level="WARNING",
        )
        for spec in TOOLS:
            self.server.add_tool(
                answers(spec.build(services)),
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations,
                structured_output=True,
            )
            # The output schema stays published, but a result is not validated against it here
            # (a pass over every value): the tools build it from typed shapes, and the tests'
            # SDK client checks each successful answer against it. The SDK reads this live.
            tool = self.server._tool_manager.get_tool(spec.name)  # noqa: SLF001 (no public getter)
            assert tool is not None
            tool.fn_metadata.output_model = None
        self.app = McpGate(self._sdk_app(), services.admission, services.bind_log)

    def _sdk_app(self) -> Any:
        app = self.server.streamable_http_app(
            streamable_http_path="/",
            json_response=True,
            stateless_http=True,
            max_request_body_size=self.config.max_body_bytes,
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection="*" not in self.config.allowed_hosts,
                allowed_hosts=list(self.config.allowed_hosts),
                allowed_origins=list(self.config.allowed_origins),
            ),
        )
        SingleExchange(self.server.session_manager).install()
        return app

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The SDK's task group: entered in the host app's lifespan (a mounted app's own
        lifespan never runs). A session manager runs once: each lifespan gets a fresh one."""
        self.app.app = self._sdk_app()
        async with self.server.session_manager.run():
            yield

    def protected_resource(self) -> dict[str, Any]:
        """The RFC 9728 protected-resource metadata: where the endpoint is and which bearer
        scopes it knows. Credentials are Taskhub's own API keys and session tokens, issued by the
        service itself: no OAuth authorization server is named."""
        document: dict[str, Any] = {
            "resource": self.config.resource_url,
            "bearer_methods_supported": ["header"],
            "scopes_supported": sorted({str(s.scope) for s in TOOLS if s.scope is not None}),
            "resource_name": "Taskhub MCP",
        }
        if self.config.documentation_url:
            document["resource_documentation"] = self.config.documentation_url
        return document


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"

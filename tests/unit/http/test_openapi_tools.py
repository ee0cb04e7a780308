"""The served OpenAPI document against third-party tools: Redocly CLI and Spectral find no error
in it, and a client generated from it by openapi-python-client works against a running server
and reads the response headers the document declares.

The tools are pinned and installed by `scripts/install-openapi-tools.sh` (`make openapi-tools`;
`.ci/run` runs it) under $CI_TOOLS (default ~/.cache/taskhub-ci/tools), or found through the
REDOCLY, SPECTRAL and OPENAPI_PYTHON_CLIENT variables or on PATH. Without them the tests skip
with the reason; under CI=true they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.factory import create_app
from tests.unit.http.conftest import BASE_ENV, fast_container

CI_TOOLS = Path(
    os.environ.get("CI_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "taskhub-ci" / "tools"
)
INSTALL_HINT = "run `make openapi-tools` (scripts/install-openapi-tools.sh)"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def find_tool(name: str, env_var: str, *defaults: Path) -> str:
    """The tool's path, else a skip with the reason (a failure under CI=true)."""
    for candidate in (os.environ.get(env_var), shutil.which(name), *map(str, defaults)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = f"{name} not found (set {env_var}, or {INSTALL_HINT})"
    if in_ci():
        pytest.fail(f"{reason}; CI=true: the OpenAPI tool tests must run")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The app on the in-memory adapters, served by uvicorn on a free loopback port."""
    container = fast_container(dict(BASE_ENV))
    app = create_app(container.settings(), container)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv_server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=uv_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        import httpx

        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        uv_server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def spec_file(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import httpx

    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_bytes(httpx.get(f"{server}/openapi.json", timeout=10).content)
    return path


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_redocly_finds_no_error(spec_file: Path) -> None:
    redocly = find_tool("redocly", "REDOCLY", CI_TOOLS / "npm/node_modules/.bin/redocly")
    code, out = run([redocly, "lint", "--format=json", str(spec_file)], spec_file.parent)
    report, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert errors == [], out
    assert code == 0, out


def test_spectral_finds_no_error(spec_file: Path) -> None:
    spectral = find_tool("spectral", "SPECTRAL", CI_TOOLS / "npm/node_modules/.bin/spectral")
    ruleset = spec_file.parent / ".spectral.yaml"
    ruleset.write_text('extends: ["spectral:oas"]\n')
    code, out = run(
        [spectral, "lint", "-r", str(ruleset), "-f", "json", "-q", str(spec_file)],
        spec_file.parent,
    )
    problems = json.loads(out) if out.strip().startswith("[") else None
    assert problems is not None, out
    errors = [p for p in problems if p["severity"] == 0]  # 0 error, 1 warning, 2 info, 3 hint
    assert errors == [], json.dumps(errors, indent=1)
    assert code == 0, out


# Run by the generator's own Python (it has the client's dependencies, attrs and httpx): the
# generated client against the server, and the response headers the generator's reading of the
# document declares (openapi-python-client's schema model; its client keeps the headers of an
# answer as a mapping, `Response.headers`).
CLIENT_SCRIPT = """
import json, sys
from openapi_python_client.schema import OpenAPI
from taskhub_api_client import AuthenticatedClient, Client
from taskhub_api_client.api.sessions import create_session
from taskhub_api_client.api.tasks import create_task, get_task, list_tasks
from taskhub_api_client.api.users import create_user
from taskhub_api_client.models import SessionCreate, TaskCreate, TaskPage, TaskOut, TaskSort
from taskhub_api_client.models import UserCreate
from taskhub_api_client.types import Response

base, spec_path = sys.argv[1], sys.argv[2]
document = OpenAPI.model_validate_json(open(spec_path).read())

def declared(path, verb, status):
    response = getattr(document.paths[path], verb).responses[str(status)]
    names = (response.headers or {}).keys()
    return sorted(getattr(n, "get_untrusted_value", lambda n=n: n)() for n in names)

def seen(response: Response, names):
    return {name: response.headers.get(name) for name in names}

anonymous = Client(base_url=base, raise_on_unexpected_status=True)
password = "correct horse battery staple"
user = create_user.sync_detailed(
    client=anonymous, body=UserCreate(email="gen@example.com", password=password)
)
session = create_session.sync_detailed(
    client=anonymous, body=SessionCreate(email="gen@example.com", password=password)
)
client = AuthenticatedClient(
    base_url=base, token=session.parsed.token, raise_on_unexpected_status=True
)
created = create_task.sync_detailed(client=client, body=TaskCreate(title="one", priority=2))
create_task.sync_detailed(client=client, body=TaskCreate(title="two"))
page = list_tasks.sync_detailed(client=client, limit=1, sort=TaskSort.PRIORITY)
fetched = get_task.sync_detailed(client=client, task_id=created.parsed.id)
rate = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
print(json.dumps({
    "statuses": [user.status_code, session.status_code, created.status_code, page.status_code,
                 fetched.status_code],
    "typed": [isinstance(created.parsed, TaskOut), isinstance(page.parsed, TaskPage),
              isinstance(fetched.parsed, TaskOut)],
    "first_priority": page.parsed.items[0].priority,
    "declared": {
        "createTask": declared("/v1/tasks", "post", 201),
        "listTasks": declared("/v1/tasks", "get", 200),
        "getTask": declared("/v1/tasks/{task_id}", "get", 200),
    },
    "seen": {
        "createTask": seen(created, ["ETag", "Location", *rate]),
        "listTasks": seen(page, ["Link", *rate]),
        "getTask": seen(fetched, ["ETag", *rate]),
    },
}))
"""


def test_a_generated_client_reads_the_declared_headers(
    server: str, spec_file: Path, tmp_path: Path
) -> None:
    generator = find_tool(
        "openapi-python-client", "OPENAPI_PYTHON_CLIENT", CI_TOOLS / "bin/openapi-python-client"
    )
    python = Path(generator).parent / "python"
    if not os.access(python, os.X_OK):
        pytest.fail(f"{generator} has no python beside it to run the generated client with")
    env = {**os.environ, "PATH": f"{Path(generator).parent}{os.pathsep}{os.environ['PATH']}"}
    code, out = run(
        [generator, "generate", "--path", str(spec_file), "--meta", "none"], tmp_path, env
    )
    assert code == 0, out
    assert "Warning" not in out, out  # every operation and schema made it into the client
    script = tmp_path / "use_client.py"
    script.write_text(textwrap.dedent(CLIENT_SCRIPT))
    code, out = run([str(python), str(script), server, str(spec_file)], tmp_path, env)
    assert code == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert result["statuses"] == [201, 201, 201, 200, 200]
    assert result["typed"] == [True, True, True]
    assert result["first_priority"] == 1  # sort=priority went out as the enum's value
    rate = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
    expected = {
        "createTask": {"ETag", "Location"} | rate,
        "listTasks": {"Link"} | rate,
        "getTask": {"ETag"} | rate,
    }
    for operation, names in expected.items():
        assert names <= set(result["declared"][operation]), operation
        values = result["seen"][operation]
        assert all(values[name] for name in names), (operation, values)
        for name in rate:
            assert re.fullmatch(r"[0-9]+", values[name]), (operation, name, values[name])
    assert result["seen"]["listTasks"]["Link"].endswith('>; rel="next"')
    assert result["seen"]["createTask"]["Location"].startswith("/v1/tasks/")

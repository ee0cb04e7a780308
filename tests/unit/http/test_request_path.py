"""The Link header's path is what Litestar's `request.url.path` is, without building the URL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.testing import TestClient

from adapters.http.cursors import request_path


@get("/v1/tasks", sync_to_thread=False)
def both(request: Request[Any, Any, Any]) -> dict[str, str]:
    ours = request_path(request.scope)
    return {"ours": ours, "litestar": request.url.path}


@pytest.mark.parametrize(
    ("root_path", "path"), [("", "/v1/tasks"), ("", "/v1/tasks/"), ("/api", "/v1/tasks")]
)
def test_the_same_path_as_request_url(root_path: str, path: str) -> None:
    with TestClient(Litestar([both], openapi_config=None), root_path=root_path) as client:
        answer = client.get(path + "?limit=5").json()
    assert answer["ours"] == answer["litestar"]
    assert answer["ours"].endswith("/v1/tasks")

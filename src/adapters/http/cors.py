"""Litestar's CORS handling, with its refusal of a preflight answered as problem+json."""

from __future__ import annotations

from litestar import Response
from litestar.datastructures import Headers
from litestar.middleware._internal.cors import CORSMiddleware

from adapters.http.problems import problem_response


class ProblemCORSMiddleware(CORSMiddleware):
    """A preflight from an origin (or asking for a method or header) that is not allowed gets a
    400 problem without any Access-Control-Allow-* header; everything else is Litestar's."""

    def _create_preflight_response(
        self, origin: str, request_headers: Headers
    ) -> Response[str | None]:
        response = super()._create_preflight_response(origin, request_headers)
        status = response.status_code or 200
        if status < 400:
            return response
        detail = str(response.content or "Disallowed CORS request")
        return problem_response(None, status, detail + ".")  # type: ignore[return-value]

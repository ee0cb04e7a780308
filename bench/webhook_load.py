"""`BENCH_WEBHOOKS=N` for `bench.run`: Taskhub's POST row measured with N webhooks subscribed.

Before each Taskhub POST row (its warm-up included) the bench user subscribes N enabled
webhooks (`task.*`, every project) to a local receiver answering 204, through the API with a
key of its own (`webhooks:manage`); the server's in-process worker fans the new tasks' events
out and delivers them while wrk runs. After the measured run the webhooks are deleted through
the API (their deliveries with them), so no backlog reaches the batch row, the next round or
the ceiling. A POST row during which the receiver got no delivery at all, even after waiting
two worker polls, is void: webhooks that deliver nothing would make the row look free.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from dataclasses import dataclass, field

import asyncpg  # type: ignore[import-untyped]

from bench.receiver import ThreadedReceiver

# The server's worker polls every WORKER_POLL_SECONDS (5 s by default): wait this long for a
# first delivery before calling a row void.
NO_DELIVERY_WAIT_S = 15.0
SERVER_ENV = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}


def _call(port: int, method: str, path: str, token: str, body: object = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


async def _pending(dsn: str, hook_ids: list[str]) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' "
            "AND webhook_id = ANY($1::uuid[])",
            [uuid.UUID(h) for h in hook_ids],
        )
    finally:
        await connection.close()
    return int(count)


@dataclass
class WebhookLoad:
    count: int
    token: str  # an API key of the bench user with `webhooks:manage`
    receiver: ThreadedReceiver
    hook_ids: list[str] = field(default_factory=list)
    _mark: int = 0

    def subscribe(self, port: int) -> None:
        for n in range(self.count):
            body = {"url": self.receiver.url, "events": ["task.*"], "description": f"bench {n}"}
            status, text = _call(port, "POST", "/v1/webhooks", self.token, body)
            if status != 201:
                raise RuntimeError(f"POST /v1/webhooks answered {status}: {text[:300]}")
            self.hook_ids.append(json.loads(text)["id"])

    def measuring(self) -> None:
        """The measured run starts: deliveries from here on count."""
        self._mark = self.receiver.count

    def finish(self, port: int, dsn: str, requests: int) -> tuple[str, bool]:
        """A note on the deliveries of the measured run, and whether any arrived (waiting a
        little when none did); then the webhooks are deleted."""
        during = self.receiver.count - self._mark
        pending = asyncio.run(_pending(dsn, self.hook_ids))
        deadline = time.monotonic() + NO_DELIVERY_WAIT_S
        while self.receiver.count == self._mark and time.monotonic() < deadline:
            time.sleep(0.2)
        after = self.receiver.count - self._mark - during
        for hook_id in self.hook_ids:
            status, text = _call(port, "DELETE", f"/v1/webhooks/{hook_id}", self.token)
            if status != 204:
                raise RuntimeError(f"DELETE /v1/webhooks/{hook_id} answered {status}: {text}")
        self.hook_ids.clear()
        note = (
            f"{self.count} webhooks: {during} deliveries received during the measured POST run "
            f"({requests} requests, so about {requests * self.count} deliveries due), "
            f"{pending} pending at its end"
        )
        if after:
            note += f", {after} more while waiting for a first one"
        return note, during + after > 0

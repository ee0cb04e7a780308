"""A small world for webhook tests: the project world plus webhook use cases over the memory
twins, a recording sender and a recording monitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from adapters.memory.feed import MemoryChangeFeed
from adapters.memory.webhooks import MemoryWebhookUnitOfWork
from adapters.security.crypto import FernetCipher
from adapters.security.tokens import RandomSecretGenerator
from domain.ports.webhooks import DeliveryBacklog
from domain.use_cases import webhooks as uc
from domain.webhooks import DeliveryRules, SendResult, TargetPolicy, parse_schedule
from tests.unit.projects.support import World
from tests.unit.tasks.fakes import FakeClock

KEY = FernetCipher.generate_key()
RULES = DeliveryRules(parse_schedule("5s,5m,30m,2h,5h,10h,10h"), timedelta(days=5))
URL = "https://hooks.example.com/taskhub"


@dataclass
class Sent:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingSender:
    answers: list[SendResult] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        self.sent.append(Sent(url, dict(headers), body))
        if self.answers:
            return self.answers.pop(0)
        return SendResult(200, None, "ok", 3)


@dataclass
class RecordingMonitor:
    outcomes: list[str] = field(default_factory=list)
    backlogs: list[DeliveryBacklog] = field(default_factory=list)

    def attempted(self, outcome: str) -> None:
        self.outcomes.append(outcome)

    def backlog(self, backlog: DeliveryBacklog, now: datetime) -> None:
        self.backlogs.append(backlog)


@dataclass
class HookWorld(World):
    # Real time: receivers (the standardwebhooks verifier) refuse old timestamps.
    clock: FakeClock = field(default_factory=lambda: FakeClock(datetime.now(UTC)))
    cipher: FernetCipher = field(default_factory=lambda: FernetCipher(KEY))
    secrets: RandomSecretGenerator = field(default_factory=RandomSecretGenerator)
    policy: TargetPolicy = field(default_factory=TargetPolicy)
    feed: MemoryChangeFeed = field(default_factory=MemoryChangeFeed)
    sender: RecordingSender = field(default_factory=RecordingSender)
    monitor: RecordingMonitor = field(default_factory=RecordingMonitor)

    def hook_uow(self) -> MemoryWebhookUnitOfWork:
        return MemoryWebhookUnitOfWork(self.database)

    def create(self) -> uc.CreateWebhook:
        return uc.CreateWebhook(
            self.hook_uow, self.clock, self.ids, self.secrets, self.cipher, self.policy
        )

    def update(self) -> uc.UpdateWebhook:
        return uc.UpdateWebhook(self.hook_uow, self.clock, self.policy)

    def fan_out(self) -> uc.FanOutEvents:
        return uc.FanOutEvents(self.hook_uow, self.feed, self.clock, self.ids, batch_size=100)

    def deliver(self, holder: str = "w1") -> uc.DeliverWebhooks:
        return uc.DeliverWebhooks(
            self.hook_uow,
            self.sender,
            self.cipher,
            self.clock,
            self.ids,
            self.monitor,
            RULES,
            holder=holder,
            lease=timedelta(seconds=45),
            batch_size=10,
        )

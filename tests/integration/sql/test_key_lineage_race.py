"""A key issued while its issuer is being revoked cannot escape the revocation (PostgreSQL, where
two transactions really run at once)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.integration.sql.conftest import UowFactory, add_user
from tests.integration.sql.test_identity import T0, make_key

POSTGRESQL_ONLY = True


async def test_a_revocation_waits_for_an_issue_in_flight_and_then_revokes_its_key(
    new_uow: UowFactory,
) -> None:
    user = await add_user(new_uow)
    parent = make_key(user.id)
    async with new_uow() as uow:
        await uow.api_keys.add(parent)
        await uow.commit()

    child = make_key(user.id, created_by_key_id=parent.id)
    async with new_uow() as issuing:
        assert await issuing.api_keys.get_issuer(user.id, parent.id) == parent

        async def revoke() -> list[str]:
            async with new_uow() as uow:
                revoked = await uow.api_keys.revoke_tree(parent.id, T0 + timedelta(hours=1))
                await uow.commit()
                return revoked

        revoking = asyncio.create_task(revoke())
        await asyncio.sleep(0.3)  # let the revocation reach the issuer's row and wait there
        assert not revoking.done()
        await issuing.api_keys.add(child)
        await issuing.commit()
    revoked = await asyncio.wait_for(revoking, 10)

    assert revoked == [parent.id, child.id]
    async with new_uow() as uow:
        stored = await uow.api_keys.get_for_user(user.id, child.id)
    assert stored is not None
    assert stored.revoked_at is not None


async def test_an_issue_after_a_revocation_sees_the_issuer_revoked(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    parent = make_key(user.id)
    async with new_uow() as uow:
        await uow.api_keys.add(parent)
        await uow.commit()

    async with new_uow() as revoking:
        await revoking.api_keys.revoke_tree(parent.id, T0)

        async def issuer() -> object:
            async with new_uow() as uow:
                return await uow.api_keys.get_issuer(user.id, parent.id)

        reading = asyncio.create_task(issuer())
        await asyncio.sleep(0.3)
        assert not reading.done()  # held until the revocation commits
        await revoking.commit()
    seen = await asyncio.wait_for(reading, 10)
    assert getattr(seen, "revoked_at", None) == T0

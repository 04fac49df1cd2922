"""Read-only units of work whose loaded rows stay usable after the block.

(The registry has the same ten lines; they belong in `kubeserve_common.db` once both services
settle.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kubeserve_common.db.uow import UnitOfWork, UnitOfWorkFactory


@asynccontextmanager
async def reading(factory: UnitOfWorkFactory) -> AsyncIterator[UnitOfWork]:
    """Leaving a UnitOfWork without commit rolls back, which expires every loaded row; detach
    them first so the caller can still read their attributes."""
    async with factory() as uow:
        try:
            yield uow
        finally:
            uow.session.expunge_all()

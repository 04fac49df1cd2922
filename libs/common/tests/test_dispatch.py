"""`dispatch()`: one effect routing an event to the handler of its payload type."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubeserve_common.errors import PermanentError
from kubeserve_common.events import CloudEvent, DeploymentDeleted, UserRegistered
from kubeserve_common.messaging.inbox import dispatch
from pydantic import ValidationError


async def test_routes_by_payload_type_and_refuses_the_rest() -> None:
    seen: list[Any] = []

    async def on_user(uow: Any, payload: UserRegistered) -> None:
        seen.append((uow, payload))

    effect = dispatch({UserRegistered: on_user})
    payload = UserRegistered(user_id=uuid.uuid4(), email="d@example.com", role="user")
    await effect(CloudEvent.create(payload, service="test"), "the-uow")  # type: ignore[arg-type]
    assert seen == [("the-uow", payload)]

    other = CloudEvent.create(
        DeploymentDeleted(deployment_id=uuid.uuid4(), owner_id=uuid.uuid4()), service="test"
    )
    with pytest.raises(PermanentError, match="unexpected event type"):
        await effect(other, "the-uow")  # type: ignore[arg-type]
    broken = CloudEvent(source="/x", type=UserRegistered.event_type(), data={"email": 3})
    with pytest.raises(ValidationError):
        await effect(broken, "the-uow")  # type: ignore[arg-type]
    assert len(seen) == 1

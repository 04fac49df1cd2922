"""The envelope against the CloudEvents 1.0 rules, and against the official `cloudevents` SDK:
what it accepts we read, what it writes we read, and what we write it reads back.

The SDK here is 1.x: kserve (whose real client the protocol tests use) pins `cloudevents<2`,
and 1.x does not validate extension names or times, so the refusals below are the spec's rules
asserted on our envelope (2.x's validating reader would judge them too; see the issue notes)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.conversion import to_json
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent as SdkEvent
from cloudevents.http import from_json
from kubeserve_common.events import CloudEvent, UserRegistered
from pydantic import ValidationError

TYPE = UserRegistered.event_type()
DATA = {"user_id": str(uuid.uuid4()), "email": "ada@example.com", "role": "user"}


def wire(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/kubeserve/auth",
        "type": TYPE,
        "time": "2026-01-02T03:04:05.678Z",
        "datacontenttype": "application/json",
        "tenantid": DATA["user_id"],
        "data": DATA,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sdk_accepts(body: dict[str, Any]) -> bool:
    try:
        from_json(json.dumps(body).encode())
    except (GenericException, ValueError):
        return False
    return True


def ours_accepts(body: dict[str, Any]) -> bool:
    try:
        CloudEvent.from_json(json.dumps(body))
    except (ValidationError, ValueError):
        return False
    return True


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("uppercase extension", wire(TenantID="u1")),
        ("extension with a dash", wire(**{"tenant-id": "u1"})),
        ("extension with an underscore", wire(tenant_id="u1")),
        ("time without a zone", wire(time="2026-01-02T03:04:05")),
        ("time that is no timestamp", wire(time="yesterday")),
        ("empty subject", wire(subject="")),
        ("empty id", wire(id="")),
        ("wrong specversion", wire(specversion="0.3")),
    ],
)
def test_what_the_spec_forbids_we_refuse(case: str, body: dict[str, Any]) -> None:
    assert not ours_accepts(body), case
    assert ours_accepts(wire()), "the same event without the fault is fine"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("plain", wire()),
        ("media type with a charset", wire(datacontenttype="application/json; charset=utf-8")),
        ("+json media type", wire(datacontenttype="application/vnd.kubeserve+json")),
        ("time with an offset", wire(time="2026-01-02T05:04:05+02:00")),
        ("a lowercase extension of a producer", wire(traceparent="00-abc-def-01", seq=7)),
        (
            "data_base64",
            wire(data=None, data_base64=base64.b64encode(json.dumps(DATA).encode()).decode()),
        ),
    ],
)
def test_what_the_sdk_accepts_we_read(case: str, body: dict[str, Any]) -> None:
    assert sdk_accepts(body), case
    event = CloudEvent.from_json(json.dumps(body))
    assert event.data == DATA, case
    assert event.payload() == UserRegistered.model_validate(DATA)


def test_rules_beyond_the_sdks_checks() -> None:
    # The spec's SHOULD on name length (20) and its attribute type system; the SDK skips them.
    assert not ours_accepts(wire(tenantidentifierforrouting="u1"))  # 27 characters
    assert ours_accepts(wire(a2345678901234567890="x"))  # exactly 20
    assert not ours_accepts(wire(labels={"a": "b"}))
    assert not ours_accepts(wire(count=2**40))
    # A time given as a Unix number is not RFC 3339.
    assert not ours_accepts(wire(time=1767322800))
    # data and data_base64 together are ambiguous; binary non-JSON data is not ours.
    encoded = base64.b64encode(json.dumps(DATA).encode()).decode()
    assert not ours_accepts(wire(data_base64=encoded))
    assert not ours_accepts(
        wire(data=None, data_base64=encoded, datacontenttype="application/octet-stream")
    )
    assert not ours_accepts(wire(data=None, data_base64="not base64!"))
    assert not ours_accepts(wire(datacontenttype="text/plain"))


def test_a_naive_time_is_refused_in_python_too() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CloudEvent(source="/x", type=TYPE, time=datetime(2026, 1, 1), data=DATA)
    aware = CloudEvent(source="/x", type=TYPE, time=datetime(2026, 1, 1, tzinfo=UTC), data=DATA)
    assert aware.time.tzinfo is not None


def test_what_we_write_the_sdk_reads_with_every_attribute() -> None:
    ours = CloudEvent.create(
        UserRegistered.model_validate(DATA),
        service="auth",
        subject=f"users/{DATA['user_id']}",
        tenant_id=DATA["user_id"],
    )
    theirs = from_json(ours.to_json())
    assert theirs["id"] == ours.id
    assert theirs["type"] == TYPE
    assert theirs["source"] == "/kubeserve/auth"
    assert theirs["subject"] == ours.subject
    assert datetime.fromisoformat(theirs["time"].replace("Z", "+00:00")) == ours.time
    assert theirs["tenantid"] == DATA["user_id"]
    assert theirs.get_data() == DATA


def test_what_the_sdk_writes_we_read_binary_data_included() -> None:
    attributes = {
        "id": "sdk-1",
        "source": "/elsewhere",
        "type": TYPE,
        "datacontenttype": "application/json; charset=utf-8",
        "tenantid": DATA["user_id"],
    }
    for data in (DATA, json.dumps(DATA).encode()):  # bytes travel as data_base64
        written = to_json(SdkEvent(dict(attributes), data))
        assert (b"data_base64" in written) is isinstance(data, bytes)
        event = CloudEvent.from_json(written)
        assert event.data == DATA
        assert event.tenantid == DATA["user_id"]
        assert event.datacontenttype == "application/json; charset=utf-8"
        assert event.time.tzinfo is not None

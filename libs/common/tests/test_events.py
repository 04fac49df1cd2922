"""The CloudEvents envelope and the event catalog."""

from __future__ import annotations

import json
import uuid

import pytest
from kubeserve_common.events import CLOUDEVENTS_CONTENT_TYPE, CloudEvent, VersionUploaded
from kubeserve_common.events.catalog import catalog, payload_class
from kubeserve_common.events.topology import Topology, topic_matches
from pydantic import ValidationError

DESIGN_TYPES = {
    "UserRegistered",
    "ModelCreated",
    "VersionUploaded",
    "VersionBuilt",
    "VersionBuildFailed",
    "DeployRequested",
    "DeploymentReady",
    "DeploymentFailed",
    "DeploymentScaled",
    "UndeployRequested",
    "DeploymentDeleted",
}
# Beyond DESIGN.md's core list: the autoscaler's decisions (issue 12) and the revocations that
# reach every gateway (issue 15 item 7).
EXTRA_TYPES = {"DeploymentAutoscaled", "UserDisabled", "UserDeleted", "ApiKeyRevoked"}


def uploaded() -> VersionUploaded:
    return VersionUploaded(
        model_id=uuid.uuid4(),
        version_id=uuid.uuid4(),
        version_tag="v1",
        owner_id=uuid.uuid4(),
        framework="sklearn",
        artifact_uri="s3://b/models/x/model.joblib",
        filename="model.joblib",
        sha256="a" * 64,
        size=10,
    )


def test_catalog_has_a_typed_payload_for_every_design_event() -> None:
    names = {cls.__name__ for cls in catalog().values()}
    assert names == DESIGN_TYPES | EXTRA_TYPES
    for event_type in catalog():
        assert event_type.startswith("io.kubeserve.") and event_type.endswith(".v1")


def test_structured_cloudevent_round_trip() -> None:
    payload = uploaded()
    event = CloudEvent.create(
        payload, service="registry", subject="models/1/versions/1", tenant_id=str(payload.owner_id)
    )
    wire = json.loads(event.to_json())
    assert wire["specversion"] == "1.0"
    assert wire["source"] == "/kubeserve/registry"
    assert wire["type"] == "io.kubeserve.version.uploaded.v1"
    assert wire["tenantid"] == str(payload.owner_id)
    assert wire["datacontenttype"] == "application/json"
    assert CLOUDEVENTS_CONTENT_TYPE == "application/cloudevents+json"
    back = CloudEvent.from_json(event.to_json())
    assert back == event
    assert back.payload() == payload


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"specversion":"1.0","id":"1","source":"/x","type":"not.ours"}',
        b'{"specversion":"0.3","id":"1","source":"/x","type":"io.kubeserve.user.registered.v1"}',
        b"x" * (300 * 1024),
    ],
)
def test_invalid_envelopes_are_refused(body: bytes) -> None:
    with pytest.raises((ValidationError, ValueError)):
        CloudEvent.from_json(body)


def test_payload_validation_rejects_bad_data_and_unknown_types() -> None:
    event = CloudEvent(source="/x", type="io.kubeserve.version.uploaded.v1", data={"sha256": "zz"})
    with pytest.raises(ValidationError):
        event.payload()
    with pytest.raises(KeyError):
        payload_class("io.kubeserve.nothing.happened.v1")


def test_topology_names_and_topic_matching() -> None:
    topo = Topology("t1.")
    queue = topo.queue("builder", "builds")
    assert queue == "t1.q.builder.builds"
    assert topo.dead_letter_queue(queue) == "t1.dlq.builder.builds"
    assert topo.events_exchange == "t1.kubeserve.events"
    with pytest.raises(ValueError):
        topo.queue("Builder!", "x")
    assert topic_matches("io.kubeserve.#", "io.kubeserve.user.registered.v1")
    assert topic_matches("io.kubeserve.*.registered.v1", "io.kubeserve.user.registered.v1")
    assert not topic_matches("io.kubeserve.*.v1", "io.kubeserve.user.registered.v1")
    assert topic_matches("#", "a")


def test_asyncapi_document_is_generated_from_the_catalog() -> None:
    from pathlib import Path

    from kubeserve_common.events.asyncapi import render

    committed = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
    assert committed.read_text() == render(), (
        "docs/asyncapi.yaml is stale: run "
        "`uv run python -m kubeserve_common.events.asyncapi > docs/asyncapi.yaml`"
    )

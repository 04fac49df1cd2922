"""Builds, their stages and the build report: plain objects, no I/O."""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class BuildStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Stage(enum.StrEnum):
    """The steps of a build, in order; a failure names the one it happened in."""

    FETCH = "fetch"
    STATIC = "static"
    REQUIREMENTS = "requirements"
    WHEELHOUSE = "wheelhouse"
    TRIAL = "trial"
    # Not a step: the build was interrupted too often (the builder itself kept dying).
    BUILDER = "builder"


class BuildFailure(Exception):
    """The artifact (or its requirements) cannot become a Ready version: permanent."""

    def __init__(self, stage: Stage, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.details = details


class TransientBuildError(Exception):
    """Something outside the artifact failed (object store, index unreachable): run it again."""


@dataclass
class StepRecord:
    stage: str
    status: str = "running"  # running | ok | failed
    duration_ms: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 1),
            "details": self.details,
        }


@dataclass
class BuildReport:
    """What the build found, step by step; stored as `build-report.json` beside the artifact."""

    version_id: str
    model_id: str
    owner_id: str
    version_tag: str
    artifact_uri: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    outcome: str = "running"  # succeeded | failed
    failure: dict[str, str] | None = None
    sandbox: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attempt: int = 1

    @contextmanager
    def step(self, stage: Stage) -> Iterator[StepRecord]:
        """Time one step; a `BuildFailure` raised inside marks it failed and propagates."""
        record = StepRecord(stage.value)
        self.steps.append(record)
        started = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            record.status = "failed"
            if isinstance(exc, BuildFailure):
                record.details.setdefault("reason", exc.reason)
            raise
        else:
            record.status = "ok"
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000

    def finish(self, failure: BuildFailure | None) -> None:
        self.finished_at = datetime.now(UTC)
        if failure is None:
            self.outcome = "succeeded"
        else:
            self.outcome = "failed"
            self.failure = {"stage": failure.stage.value, "reason": failure.reason}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "model_id": self.model_id,
            "owner_id": self.owner_id,
            "version_tag": self.version_tag,
            "artifact_uri": self.artifact_uri,
            "attempt": self.attempt,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "outcome": self.outcome,
            "failure": self.failure,
            "sandbox": self.sandbox,
            "warnings": self.warnings,
            "steps": [s.to_dict() for s in self.steps],
        }

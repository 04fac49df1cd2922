"""Calibrated cold-start prediction (issue 18.1), pure: a running, outlier-robust estimate per
backend and per phase, learnt from the cold starts the deployer measures, with the version's
own trial load time and wheelhouse size as inputs. The reconciler learns every replica start
once (`services/cold_start.py`); the estimates live in the `cold_start_estimates` table.

Per phase the estimator keeps the last `WINDOW` observations of a *normalised* quantity and
uses their median (one slow start moves nothing):
- `start` (warm-pool fork / process spawn / pod scheduling + image): milliseconds;
- `dependencies` (installing the wheelhouse): milliseconds per MiB of wheels;
- `model_load`: the replica's load time divided by the version's trial load time;
- `first_ready` (from loaded to answering health): milliseconds.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BACKENDS = ("local-warm-pool", "local-process", "kubernetes-pod")
PHASES = ("start", "dependencies", "model_load", "first_ready")
WINDOW = 25
MIN_OBSERVATIONS = 3  # per phase, before a backend's prediction counts as calibrated
# The phases each backend measures apart (the others stay at their prior, and what they really
# take lands in `start`): calibration waits only for these.
MEASURED: dict[str, tuple[str, ...]] = {
    "local-warm-pool": PHASES,
    "local-process": ("start", "dependencies"),
    "kubernetes-pod": ("start",),
}


# Before any observation: the builder's fixed guesses, per backend (ms, ms/MiB, ratio, ms).
def _prior(start: float, load_ratio: float, first_ready: float) -> dict[str, float]:
    return {
        "start": start,
        "dependencies": 400.0,
        "model_load": load_ratio,
        "first_ready": first_ready,
    }


PRIORS: dict[str, dict[str, float]] = {
    "local-warm-pool": _prior(50.0, 1.0, 50.0),
    "local-process": _prior(1500.0, 1.0, 100.0),
    "kubernetes-pod": _prior(4000.0, 1.2, 500.0),
}


@dataclass(frozen=True)
class VersionInputs:
    trial_load_ms: float | None  # the builder's sandboxed trial load
    wheelhouse_mib: float = 0.0  # wheels the runtime installs at start


@dataclass(frozen=True)
class Prediction:
    backend: str
    total_ms: float
    phases_ms: dict[str, float]
    calibrated: bool
    observations: int  # the fewest observations behind any phase

    @property
    def label(self) -> str:
        return "calibrated" if self.calibrated else "estimate, not yet calibrated"


@dataclass
class ColdStartModel:
    samples: dict[str, dict[str, deque[float]]] = field(default_factory=dict)

    def observe(
        self, backend: str, inputs: VersionInputs, phases_ms: Mapping[str, float]
    ) -> list[str]:
        """Learn from one measured cold start (phases the backend did not measure are
        skipped; a phase that cannot be normalised - no trial time, no wheels - too).
        Returns the phases that got a sample."""
        _check_backend(backend)
        learnt = []
        for phase, ms in phases_ms.items():
            if phase not in PHASES or ms < 0:
                continue
            value = _normalise(phase, ms, inputs)
            if value is not None:
                self._window(backend, phase).append(value)
                learnt.append(phase)
        return learnt

    def predict(self, backend: str, inputs: VersionInputs) -> Prediction:
        _check_backend(backend)
        phases: dict[str, float] = {}
        counts = []
        for phase in PHASES:
            window = self.samples.get(backend, {}).get(phase) or deque()
            if _needed(phase, inputs) and phase in MEASURED[backend]:
                counts.append(len(window))
            estimate = statistics.median(window) if window else PRIORS[backend][phase]
            phases[phase] = round(_denormalise(phase, estimate, inputs), 1)
        fewest = min(counts) if counts else MIN_OBSERVATIONS
        return Prediction(
            backend, round(sum(phases.values()), 1), phases, fewest >= MIN_OBSERVATIONS, fewest
        )

    def _window(self, backend: str, phase: str) -> deque[float]:
        return self.samples.setdefault(backend, {}).setdefault(phase, deque(maxlen=WINDOW))

    def to_json(self) -> dict[str, dict[str, list[float]]]:
        return {b: {p: list(w) for p, w in phases.items()} for b, phases in self.samples.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColdStartModel:
        model = cls()
        for backend, phases in data.items():
            if backend not in BACKENDS or not isinstance(phases, Mapping):
                continue
            for phase, values in phases.items():
                if phase in PHASES and isinstance(values, list):
                    window = model._window(backend, phase)
                    window.extend(float(v) for v in values if isinstance(v, int | float))
        return model


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")


def _needed(phase: str, inputs: VersionInputs) -> bool:
    if phase == "dependencies":
        return inputs.wheelhouse_mib > 0
    if phase == "model_load":
        return bool(inputs.trial_load_ms)
    return True


def _normalise(phase: str, ms: float, inputs: VersionInputs) -> float | None:
    if phase == "dependencies":
        return ms / inputs.wheelhouse_mib if inputs.wheelhouse_mib > 0 else None
    if phase == "model_load":
        return ms / inputs.trial_load_ms if inputs.trial_load_ms else None
    return ms


def _denormalise(phase: str, value: float, inputs: VersionInputs) -> float:
    if phase == "dependencies":
        return value * inputs.wheelhouse_mib
    if phase == "model_load":
        return value * (inputs.trial_load_ms or 0.0)
    return value


# -- from what a backend measured to the estimator's phases --------------------------------------
_LAUNCHERS = {"pool": "local-warm-pool", "process": "local-process", "kubernetes": "kubernetes-pod"}


def backend_for(launcher: str | None) -> str:
    """The estimator's backend for a replica's launcher (`ReplicaView.launcher`)."""
    return _LAUNCHERS.get(launcher or "", "local-process")


def measured_phases(
    backend: str, timings: Mapping[str, float], inputs: VersionInputs, estimate: Prediction
) -> dict[str, float]:
    """The phases one measured cold start tells (ms), for `observe()`. A phase the backend does
    not measure apart is left out; what it lumps together goes to `start` after taking off the
    current estimate of the lumped phases (a plain process and a pod report no load time)."""
    _check_backend(backend)

    def get(name: str) -> float:
        return float(timings.get(name, 0.0))

    fetch = get("fetch_ms")
    if backend == "kubernetes-pod":
        lumped = sum(estimate.phases_ms[p] for p in ("dependencies", "model_load", "first_ready"))
        measured = get("pod_ready_ms") if "pod_ready_ms" in timings else get("rollout_ms")
        return {"start": max(0.0, measured - lumped)}
    phases: dict[str, float] = {}
    if inputs.wheelhouse_mib > 0:
        phases["dependencies"] = fetch  # the artifact and its wheels, unpacked
        fetch = 0.0
    if backend == "local-warm-pool" and "model_load_ms" in timings:
        phases["start"] = fetch + get("spawn_ms")
        phases["model_load"] = get("model_load_ms")
        phases["first_ready"] = max(0.0, get("first_health_ms") - get("model_load_ms"))
        return phases
    lumped = estimate.phases_ms["model_load"] + estimate.phases_ms["first_ready"]
    phases["start"] = fetch + get("spawn_ms") + max(0.0, get("first_health_ms") - lumped)
    return phases


def measured_total(backend: str, timings: Mapping[str, float]) -> float:
    """The whole cold start one replica took (ms): from the start request to the first
    successful health check (a pod: created to Ready)."""
    if backend == "kubernetes-pod":
        return float(timings.get("pod_ready_ms", timings.get("rollout_ms", 0.0)))
    if "total_ms" in timings:
        return float(timings["total_ms"])
    return sum(float(timings.get(k, 0.0)) for k in ("fetch_ms", "spawn_ms", "first_health_ms"))


def expected_backend(runtime_backend: str, warm_pool: bool, has_wheelhouse: bool) -> str:
    """The backend a new replica of a version would start on: a pod on Kubernetes; locally a
    fork of the warm pool, unless the version brings its own packages (a wheelhouse: the pool
    has other versions imported) or the pool is off."""
    if runtime_backend == "kubernetes":
        return "kubernetes-pod"
    return "local-warm-pool" if warm_pool and not has_wheelhouse else "local-process"


def start_key(start_id: str | None) -> str | None:
    """A replica start's id as stored (at most 64 characters: a longer one is hashed), so an
    odd id a backend reports can never make the reconcile pass's write fail."""
    if start_id is None or len(start_id) <= 64:
        return start_id
    return hashlib.sha256(start_id.encode()).hexdigest()

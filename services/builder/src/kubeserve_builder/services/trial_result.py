"""Reading the trial child's exit: its (untrusted) result, or a failure a user can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubeserve_builder.adapters.sandbox import TrialOutcome
from kubeserve_builder.domain.models import BuildFailure, Stage

MIB = 1024 * 1024


@dataclass
class TrialResult:
    """What a successful trial reported: the model's signature, the smoke prediction, timings."""

    signature: dict[str, Any]
    smoke: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def load_ms(self) -> float:
        return duration(self.timings.get("load_ms"))


def interpret(outcome: TrialOutcome) -> TrialResult:
    """Turn the child's exit into the trial's data or a `BuildFailure` a user can act on."""
    limits, process = outcome.limits, outcome.process
    if process.timed_out:
        raise BuildFailure(
            Stage.TRIAL,
            f"loading the model did not finish within {limits.timeout_seconds:g} s (wall clock) "
            "and was stopped - an endless loop or a wait while unpickling?",
        )
    sig = outcome.signal_number
    result = outcome.result
    if result is None or not isinstance(result.get("ok"), bool):
        if sig in (24, 9) and sig is not None:  # SIGXCPU, then SIGKILL at the hard limit
            raise BuildFailure(
                Stage.TRIAL,
                f"loading the model used more than {limits.cpu_seconds} s of CPU time and was "
                "stopped",
            )
        if sig == 25:  # SIGXFSZ
            raise BuildFailure(
                Stage.TRIAL,
                f"the model tried to write a file larger than {limits.max_file_bytes} bytes "
                "while loading",
            )
        tail = process.stderr_tail.strip().splitlines()[-1:] or ["no output"]
        how = f"signal {sig}" if sig else f"exit status {process.returncode}"
        raise BuildFailure(
            Stage.TRIAL, f"the trial process ended ({how}) without a result: {tail[0][:500]}"
        )
    if not result["ok"]:
        phase = str(result.get("phase", "load"))
        error = str(result.get("error", "unknown error"))[:1500]
        if "MemoryError" in error:
            error += f" (limit {limits.memory_bytes // MIB} MiB of address space)"
        raise BuildFailure(Stage.TRIAL, f"the model failed at {phase}: {error}")
    signature = result.get("signature")
    if not isinstance(signature, dict):
        raise BuildFailure(Stage.TRIAL, "the trial returned no signature")
    timings = result.get("timings") if isinstance(result.get("timings"), dict) else {}
    smoke = result.get("smoke")
    return TrialResult(signature, smoke if isinstance(smoke, dict) else {}, timings or {})


def duration(value: Any) -> float:
    """A duration the (untrusted) child reported, as a sane non-negative number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if 0 <= number < 86_400_000 else 0.0

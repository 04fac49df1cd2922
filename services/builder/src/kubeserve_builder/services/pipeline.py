"""One build, step by step: fetch -> static -> requirements -> wheelhouse -> trial.

Each step is timed into the build report, which is stored beside the artifact
(`models/{user}/{model}/{tag}/build-report.json`); the wheels go to `.../wheelhouse/`.
No database here: the build loop owns the transaction that records the outcome.

Predicted cold start (ms) = `cold_start_base_ms` (the base image's runtime starting with no
extra package) + the trial's measured model load time + for every wheel to install
`cold_start_per_wheel_ms` + `cold_start_per_mib_ms` per MiB of wheels. The parts are in the
dependency plan's `cold_start` entry so a user can see where the time goes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeserve_common.events.catalog import VersionBuildFailed, VersionBuilt, VersionUploaded
from kubeserve_common.storage import ArtifactStore, StorageError
from kubeserve_runtime.requirements import (
    RequirementsError,
    make_plan,
    parse_requirements,
    read_frozen,
)
from packaging.utils import canonicalize_name

from kubeserve_builder.adapters.sandbox import SandboxUnavailable, TrialSandbox
from kubeserve_builder.adapters.wheels import WheelDownloader, WheelDownloadError
from kubeserve_builder.domain.formats import Format
from kubeserve_builder.domain.models import (
    BuildFailure,
    BuildReport,
    Stage,
    StepRecord,
    TransientBuildError,
)
from kubeserve_builder.domain.policy import describe_refused
from kubeserve_builder.services.event_data import event_signature
from kubeserve_builder.services.fetching import chunks_of, fetch_artifact
from kubeserve_builder.services.inspection import Inspection, inspect_artifact
from kubeserve_builder.services.provided import provided_modules
from kubeserve_builder.services.trial_result import TrialResult, interpret
from kubeserve_builder.services.wheel_files import check_hashes, install_wheels
from kubeserve_builder.settings import BuilderSettings

log = logging.getLogger(__name__)

MIB = 1024 * 1024
REPORT_NAME = "build-report.json"
WHEELHOUSE_DIR = "wheelhouse"
_MAX_REASON = 2000
_MAX_EVENT_DATA = 192 * 1024  # below the 256 KiB a CloudEvent may have on the bus


@dataclass
class BuildOutcome:
    """What finishing the build publishes."""

    report: dict[str, Any]
    report_uri: str
    built: VersionBuilt | None = None
    failed: VersionBuildFailed | None = None


@dataclass
class BuildResult:
    """What the steps of a successful build produce (filled in as they run)."""

    signature: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    cold_start_ms: float = 0.0
    wheelhouse_uri: str | None = None


class BuildPipeline:
    def __init__(
        self,
        store: ArtifactStore,
        sandbox: TrialSandbox,
        wheels: WheelDownloader,
        settings: BuilderSettings,
    ) -> None:
        self.store = store
        self.sandbox = sandbox
        self.wheels = wheels
        self.settings = settings
        self._base: dict[str, str] | None = None

    # -- entry -------------------------------------------------------------------------------
    async def run(self, payload: VersionUploaded, attempt: int = 1) -> BuildOutcome:
        """Run every step; a `BuildFailure` ends the build (reported), a
        `TransientBuildError` means "run it again later" (nothing is published)."""
        report = BuildReport(
            version_id=str(payload.version_id),
            model_id=str(payload.model_id),
            owner_id=str(payload.owner_id),
            version_tag=payload.version_tag,
            artifact_uri=payload.artifact_uri,
            attempt=attempt,
        )
        if self.sandbox.current is not None:
            report.sandbox = self.sandbox.current.to_dict()
        try:
            prefix = self._prefix(payload)
        except BuildFailure as early:
            # No place of ours to put a report: the failure event carries the reason alone.
            report.finish(early)
            return BuildOutcome(report.to_dict(), "", failed=self._failed(payload, early, None))
        result = BuildResult()
        failure: BuildFailure | None = None
        with tempfile.TemporaryDirectory(prefix="kubeserve-build-") as tmp:
            work = Path(tmp)
            try:
                await self._steps(payload, prefix, work, report, result)
            except BuildFailure as exc:
                failure = exc
        report.finish(failure)
        report_uri = await self._store_report(prefix, report)
        if failure is not None:
            return BuildOutcome(
                report.to_dict(), report_uri, failed=self._failed(payload, failure, report_uri)
            )
        built = VersionBuilt(
            model_id=payload.model_id,
            version_id=payload.version_id,
            version_tag=payload.version_tag,
            owner_id=payload.owner_id,
            signature=event_signature(result.signature),
            dependency_plan=result.plan,
            predicted_cold_start_ms=result.cold_start_ms,
            wheelhouse_uri=result.wheelhouse_uri,
            report_uri=report_uri,
        )
        if len(built.model_dump_json()) > _MAX_EVENT_DATA:
            # Consumers refuse events over 256 KiB: keep what a deployment needs, point to the
            # report for the rest.
            plan = result.plan
            compact = {
                "to_install": plan.get("to_install", []),
                "wheels": plan.get("wheels", []),
                "cold_start": plan.get("cold_start", {}),
                "truncated": "the full plan is in the build report",
            }
            built = built.model_copy(update={"dependency_plan": compact})
        return BuildOutcome(report.to_dict(), report_uri, built=built)

    def _refusal(self, exc: SandboxUnavailable) -> Exception:
        """No sandbox on this machine: refuse (permanent, the reason names the fix); a
        sandbox that failed once where the probe passed is worth another attempt."""
        current = self.sandbox.current
        if current is not None and current.mode == "unavailable":
            return BuildFailure(Stage.TRIAL, str(exc))
        return TransientBuildError(str(exc))

    async def _steps(
        self,
        payload: VersionUploaded,
        prefix: str,
        work: Path,
        report: BuildReport,
        result: BuildResult,
    ) -> None:
        try:
            report.sandbox = (await self.sandbox.info()).to_dict()
        except SandboxUnavailable as exc:
            # Refused before any work: the model would have to be loaded unconfined.
            with report.step(Stage.TRIAL) as rec:
                rec.details["sandbox"] = "unavailable"
                raise self._refusal(exc) from exc
        with report.step(Stage.FETCH) as rec:
            model_file = await self._fetch(payload, work, rec)
        with report.step(Stage.STATIC) as rec:
            inspection = await self._static(model_file, rec, report, payload.requirements)
        with report.step(Stage.REQUIREMENTS) as rec:
            plan = await asyncio.to_thread(self._requirements, payload.requirements, rec)
        with report.step(Stage.WHEELHOUSE) as rec:
            wheels = await self._wheelhouse(plan, prefix, work, rec, result)
        if inspection.refused:
            # Globals not on the allow-list: allowed only when a requirement provides their
            # module, which the wheels tell; still a failure of the static stage.
            with report.step(Stage.STATIC) as rec:
                names = plan.get("requirements_names", [])
                provided = await asyncio.to_thread(provided_modules, wheels, names)
                self._judge(inspection, provided, rec, report)
        plan.pop("requirements_names", None)
        with report.step(Stage.TRIAL) as rec:
            deps = None
            if wheels:
                deps = await asyncio.to_thread(install_wheels, wheels, work / "deps")
            trial = await self._trial(model_file, deps, rec, report)
        load_ms = trial.load_ms
        wheel_bytes = sum(w.stat().st_size for w in wheels)
        install_ms = len(wheels) * self.settings.cold_start_per_wheel_ms + (
            wheel_bytes / MIB * self.settings.cold_start_per_mib_ms
        )
        total = self.settings.cold_start_base_ms + load_ms + install_ms
        plan["cold_start"] = {
            "base_ms": self.settings.cold_start_base_ms,
            "model_load_ms": round(load_ms, 1),
            "install_ms": round(install_ms, 1),
            "wheels": len(wheels),
            "wheel_bytes": wheel_bytes,
            "total_ms": round(total, 1),
        }
        result.signature = {**trial.signature, "smoke": trial.smoke}
        result.plan = plan
        result.cold_start_ms = round(total, 1)

    # -- where things go ---------------------------------------------------------------------
    def _prefix(self, payload: VersionUploaded) -> str:
        try:
            key = self.store.key_for(payload.artifact_uri)
        except ValueError:
            raise BuildFailure(
                Stage.FETCH, f"the artifact URI {payload.artifact_uri!r} is not in this store"
            ) from None
        return key.rsplit("/", 1)[0] + "/" if "/" in key else ""

    async def _store_report(self, prefix: str, report: BuildReport) -> str:
        body = json.dumps(report.to_dict(), indent=2, default=str).encode()
        try:
            stored = await self.store.put_bytes(
                prefix + REPORT_NAME, body, content_type="application/json"
            )
        except StorageError as exc:
            raise TransientBuildError(f"could not store the build report: {exc}") from exc
        return stored.uri

    def _failed(
        self, payload: VersionUploaded, failure: BuildFailure, report_uri: str | None
    ) -> VersionBuildFailed:
        reason = failure.reason
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        return VersionBuildFailed(
            model_id=payload.model_id,
            version_id=payload.version_id,
            version_tag=payload.version_tag,
            owner_id=payload.owner_id,
            stage=failure.stage.value,
            reason=reason,
            report_uri=report_uri or None,
        )

    # -- 1. fetch --------------------------------------------------------------------------------
    async def _fetch(self, payload: VersionUploaded, work: Path, rec: StepRecord) -> Path:
        return await fetch_artifact(
            self.store, payload, work, rec, self.settings.max_artifact_bytes
        )

    # -- 2. static ---------------------------------------------------------------------------
    async def _static(
        self, path: Path, rec: StepRecord, report: BuildReport, requirements: str
    ) -> Inspection:
        inspection = await asyncio.to_thread(
            inspect_artifact,
            path,
            max_bytes=self.settings.max_artifact_bytes,
            max_decompressed=self.settings.max_decompressed_bytes,
        )
        rec.details.update(inspection.details)
        if inspection.dangerous or not _names_requirements(requirements):
            # A known gadget fails now whatever the requirements; without requirements
            # nothing can provide an unlisted module either.
            self._judge(inspection, set(), rec, report)
        elif inspection.refused:
            rec.details["pending"] = (
                "globals not on the allow-list, to be matched against the modules the "
                "requirements provide: " + ", ".join(v.dotted for v in inspection.refused)
            )
        if inspection.format is Format.ZIP:
            raise BuildFailure(
                Stage.STATIC,
                "zip/PyTorch archives are not supported by the runtime; export the model to "
                "ONNX (torch.onnx.export) or save a scikit-learn compatible estimator with "
                "joblib",
            )
        return inspection

    def _judge(
        self, inspection: Inspection, provided: set[str], rec: StepRecord, report: BuildReport
    ) -> None:
        refused = inspection.judge(provided)
        rec.details["globals"] = inspection.details["globals"]
        if provided:
            rec.details["provided_modules"] = sorted(provided)
        if not refused:
            return
        if self.settings.reject_dangerous_globals:
            raise BuildFailure(Stage.STATIC, describe_refused(refused))
        report.warnings.append(
            "globals outside the allow-list were found but the scan is not enforced "
            "(reject_dangerous_globals=false): " + ", ".join(v.dotted for v in refused)
        )
        inspection.verdicts = []  # warned once

    # -- 3. requirements ---------------------------------------------------------------------
    def _base_packages(self) -> dict[str, str]:
        if self._base is None:
            try:
                self._base = read_frozen(self.settings.base_packages_file)
            except (OSError, ValueError) as exc:
                log.error("cannot read the base image's package list: %s", exc)
                self._base = {}
        return self._base

    def _requirements(self, text: str, rec: StepRecord) -> dict[str, Any]:
        try:
            lines = parse_requirements(text)
        except RequirementsError as exc:
            reason = "requirements.txt is invalid: " + "; ".join(str(e) for e in exc.errors)
            raise BuildFailure(Stage.REQUIREMENTS, reason) from None
        base = self._base_packages()
        environment = {}
        if self.settings.wheel_python_version:
            environment["python_version"] = self.settings.wheel_python_version
        plan = make_plan(lines, base, environment)
        data = plan.to_dict()
        data["base_image"] = {
            "packages": len(base),
            "source": self.settings.base_packages_file.name,
        }
        data["requirements"] = [line.text for line in lines]
        data["requirements_names"] = [line.name for line in lines]
        rec.details.update(
            requirements=len(lines),
            to_install=data["to_install"],
            satisfied=[i.requirement for i in plan.satisfied],
        )
        return data

    # -- 4. wheelhouse -----------------------------------------------------------------------
    async def _wheelhouse(
        self,
        plan: dict[str, Any],
        prefix: str,
        work: Path,
        rec: StepRecord,
        result: BuildResult,
    ) -> list[Path]:
        wanted: list[str] = plan["to_install"]
        if not wanted:
            rec.details["skipped"] = "the base image has every requirement"
            plan["wheels"] = []
            return []
        named = {canonicalize_name(str(item["name"])) for item in plan["missing"]}
        named |= {canonicalize_name(str(item["name"])) for item in plan["conflicting"]}
        # What the runtime will have: the image's packages, less those the plan replaces.
        have = {n: v for n, v in self._base_packages().items() if n not in named}
        rec.details["source"] = self.wheels.source.describe()
        dest = work / "wheels"
        try:
            pins = await self.wheels.resolve(wanted, have, work / "pip")
            kept = await self.wheels.download(pins, work / "pip", dest) if pins else []
        except WheelDownloadError as exc:
            raise BuildFailure(Stage.WHEELHOUSE, str(exc)) from None
        rec.details["resolved"] = pins
        total = sum(w.stat().st_size for w in kept)
        if total > self.settings.max_wheelhouse_bytes:
            raise BuildFailure(
                Stage.WHEELHOUSE,
                f"the wheels add up to {total} bytes; the limit is "
                f"{self.settings.max_wheelhouse_bytes}",
            )
        await asyncio.to_thread(check_hashes, plan.get("hashes") or {}, kept)
        entries = []
        for wheel in kept:
            try:
                stored = await self.store.put_stream(
                    f"{prefix}{WHEELHOUSE_DIR}/{wheel.name}", chunks_of(wheel)
                )
            except StorageError as exc:
                raise TransientBuildError(f"could not store {wheel.name}: {exc}") from exc
            entries.append({"file": wheel.name, "size": stored.size, "sha256": stored.sha256})
        plan["wheels"] = entries
        rec.details.update(wheels=entries)
        # The URI of the prefix (the store's URIs are per object; the wheelhouse is a folder).
        result.wheelhouse_uri = self.store.uri_for(prefix + WHEELHOUSE_DIR) + "/"
        return kept

    # -- 5. trial ----------------------------------------------------------------------------
    async def _trial(
        self, model_file: Path, deps: Path | None, rec: StepRecord, report: BuildReport
    ) -> TrialResult:
        try:
            outcome = await self.sandbox.run_trial(model_file, deps)
        except SandboxUnavailable as exc:
            raise self._refusal(exc) from exc
        report.sandbox = outcome.sandbox.to_dict()
        limits = outcome.limits
        rec.details.update(
            sandbox=outcome.sandbox.mode,
            exit_code=outcome.process.returncode,
            wall_ms=round(outcome.process.duration_ms, 1),
            limits={
                "memory_bytes": limits.memory_bytes,
                "cpu_seconds": limits.cpu_seconds,
                "timeout_seconds": limits.timeout_seconds,
                "max_file_bytes": limits.max_file_bytes,
                "max_processes": limits.max_processes,
            },
            output_tail=outcome.process.stderr_tail[-2000:],
        )
        data = interpret(outcome)
        smoke = data.smoke
        rec.details.update(timings=data.timings, smoke=smoke)
        if not smoke.get("ok"):
            why = smoke.get("error") or smoke.get("skipped") or "no result"
            if self.settings.require_smoke_prediction:
                raise BuildFailure(Stage.TRIAL, f"the smoke prediction failed: {why}")
            report.warnings.append(f"smoke prediction not verified: {why}")
        return data


def _names_requirements(text: str) -> bool:
    """Whether requirements.txt names any requirement (comments and blanks aside)."""
    return any(line.split("#", 1)[0].strip() for line in text.splitlines())

"use client";

import { formatMs, versionPredictions } from "@/lib/cold-start";
import { useColdStart, useDeployments } from "@/lib/queries";
import type { Version } from "@/lib/types";
import { CheckIcon, SpinnerIcon, XIcon } from "./icons";
import { StatusBadge, formatBytes } from "./ui";

const STEPS: { stage: string; label: string; help: string }[] = [
  { stage: "upload", label: "Upload", help: "the file is stored with its checksum" },
  { stage: "fetch", label: "Fetch", help: "the builder reads the artifact" },
  { stage: "static", label: "Static checks", help: "format, size and a scan of the pickle imports" },
  { stage: "requirements", label: "Dependency plan", help: "requirements against the base image" },
  { stage: "wheelhouse", label: "Wheelhouse", help: "missing wheels stored next to the model" },
  { stage: "trial", label: "Trial load", help: "load and a smoke prediction in a sandbox" },
];

type StepState = "done" | "active" | "failed" | "todo";

function stepStates(version: Version): StepState[] {
  if (version.status === "Ready") return STEPS.map(() => "done");
  if (version.status === "Uploading") return STEPS.map((_, i) => (i === 0 ? "active" : "todo"));
  if (version.status === "Building") return STEPS.map((_, i) => (i === 0 ? "done" : "active"));
  // Failed: everything before the failed stage passed.
  const failedAt = STEPS.findIndex((s) => s.stage === version.failure_stage);
  const at = failedAt === -1 ? STEPS.length - 1 : failedAt;
  return STEPS.map((_, i) => (i < at ? "done" : i === at ? "failed" : "todo"));
}

export function BuildSteps({ version }: { version: Version }) {
  const states = stepStates(version);
  return (
    <ol aria-label="Build steps" className="grid gap-2 sm:grid-cols-3 lg:grid-cols-6">
      {STEPS.map((step, i) => {
        const state = states[i] ?? "todo";
        const style = {
          done: "border-emerald-200 bg-emerald-50 text-emerald-900",
          active: "border-amber-200 bg-amber-50 text-amber-900",
          failed: "border-red-300 bg-red-50 text-red-900",
          todo: "border-slate-200 bg-white text-slate-500",
        }[state];
        return (
          <li key={step.stage} className={`rounded-md border p-2 text-xs ${style}`} data-step={step.stage} data-state={state}>
            <span className="flex items-center gap-1 font-medium">
              {state === "done" && <CheckIcon aria-label="done" />}
              {state === "active" && <SpinnerIcon aria-label="in progress" />}
              {state === "failed" && <XIcon aria-label="failed" />}
              {step.label}
            </span>
            <span className="mt-0.5 block opacity-80">{step.help}</span>
          </li>
        );
      })}
    </ol>
  );
}

export function VersionDetails({ version }: { version: Version }) {
  const plan = version.dependency_plan;
  const toInstall = plan?.to_install ?? plan?.missing ?? [];
  const signature = version.signature;
  return (
    <div className="space-y-3 text-sm">
      <BuildSteps version={version} />
      {version.status === "Failed" && (
        <div role="alert" className="rounded-md border border-red-200 bg-red-50 p-3 text-red-900" data-testid="failure">
          <p className="font-medium">Build failed{version.failure_stage ? ` at stage “${version.failure_stage}”` : ""}</p>
          <p className="mt-1 whitespace-pre-wrap break-words font-mono text-xs">{version.failure_reason ?? "No reason was given."}</p>
        </div>
      )}
      {version.status === "Ready" && (
        <dl className="grid gap-x-6 gap-y-2 sm:grid-cols-2 lg:grid-cols-4" data-testid="build-result">
          <div>
            <dt className="text-slate-500">Predicted cold start</dt>
            <dd className="font-medium" data-testid="predicted-cold-start">
              <PredictedColdStart version={version} />
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Packages the base image lacks</dt>
            <dd className="font-medium">{toInstall.length ? toInstall.join(", ") : "none: everything is preinstalled"}</dd>
          </div>
          <div>
            <dt className="text-slate-500">Input</dt>
            <dd className="font-medium">
              {signature?.feature_names_in?.length
                ? signature.feature_names_in.join(", ")
                : signature?.n_features_in != null ? `${signature.n_features_in} features` : "unknown"}
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Model</dt>
            <dd className="font-medium">
              {String(signature?.model_type ?? "—")}
              {signature?.classes?.length ? ` · classes ${signature.classes.map(String).join(", ")}` : ""}
            </dd>
          </div>
          {plan?.conflicting && plan.conflicting.length > 0 && (
            <div className="sm:col-span-2 lg:col-span-4">
              <dt className="text-slate-500">Conflicting with the base image</dt>
              <dd className="font-medium text-amber-800">{plan.conflicting.map(String).join(", ")}</dd>
            </div>
          )}
        </dl>
      )}
      {version.artifact && (
        <p className="text-xs text-slate-500">
          {version.artifact.filename} · {formatBytes(version.artifact.size)} · sha256 <span className="font-mono">{version.artifact.sha256.slice(0, 12)}…</span>
          {version.requirements ? " · with requirements.txt" : ""}
        </p>
      )}
    </div>
  );
}

/** The deployer's prediction for the backend in use (read from any of the caller's deployments:
 * one platform runs one backend), every backend's when none is deployed; the builder's number
 * as "estimate, not yet calibrated" while the platform has no prediction route. */
function PredictedColdStart({ version }: { version: Version }) {
  const read = useColdStart(version.id, version.status === "Ready");
  const deployments = useDeployments(0);
  const inUse = deployments.data?.items.find((d) => d.predicted_cold_start?.backend)?.predicted_cold_start?.backend ?? null;
  const list = versionPredictions(version, read.data, inUse);
  if (!list.length) return <>—</>;
  return (
    <>
      {list.map((p) => (
        <span key={p.backend ?? "any"} className="block" data-testid="prediction" data-backend={p.backend ?? ""} data-calibrated={String(p.calibrated)}>
          {formatMs(p.totalMs)}
          <span className="font-normal text-slate-500">
            {p.backend ? ` · ${p.backendLabel}${p.backend === inUse ? " (in use)" : ""}` : ""} · {p.label}
            {p.observations ? ` (${p.observations} observed)` : ""}
          </span>
          {p.phases.length > 0 && (
            <span className="block text-xs font-normal text-slate-500">
              {p.phases.map((x) => `${x.label} ${formatMs(x.ms)}`).join(" · ")}
            </span>
          )}
        </span>
      ))}
      {inUse === null && list.length > 1 && <span className="block text-xs font-normal text-slate-500">One line per backend: a deployment shows the one in use.</span>}
    </>
  );
}

export function VersionHeader({ version }: { version: Version }) {
  return (
    <span className="flex items-center gap-2">
      <span className="font-mono font-semibold">{version.version_tag}</span>
      <StatusBadge status={version.status} />
    </span>
  );
}

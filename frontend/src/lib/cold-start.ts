// Predicted and measured cold starts, in the one shape the deployer reports (issue 18):
// - per replica `cold_start: {backend, phases_ms, total_ms}` (measured);
// - the deployment's `predicted_cold_start: {backend, total_ms, phases_ms, calibrated, ...}`;
// - `GET /cold-start?version_id=` -> `predictions[]` per backend.
// The builder's single `predicted_cold_start_ms` on a version is the fallback when the deployer
// has no prediction route (an older platform): shown as "estimate, not yet calibrated".
// Absent fields render nothing; they never raise.

import type { ColdStartPrediction, ColdStartRead, Deployment, ReplicaColdStart, ReplicaDetail, Version } from "./types";

export interface Phase {
  key: string;
  label: string;
  ms: number;
}

export interface PredictionView {
  /** `local-warm-pool`, `local-process`, `kubernetes-pod`; null: the builder's backend-blind guess. */
  backend: string | null;
  backendLabel: string;
  totalMs: number;
  phases: Phase[];
  calibrated: boolean;
  observations: number | null;
  label: string;
  source: "deployer" | "builder";
}

export interface MeasuredView {
  backend: string;
  backendLabel: string;
  totalMs: number;
  phases: Phase[];
}

const BACKENDS: Record<string, string> = {
  "local-warm-pool": "local, warm pool",
  "local-process": "local, plain process",
  "kubernetes-pod": "Kubernetes pod",
};

const PHASE_LABELS: Record<string, string> = {
  start: "start",
  dependencies: "dependencies",
  model_load: "model load",
  first_ready: "first ready",
  base: "base runtime",
  install: "install wheels",
};
const PHASE_ORDER = ["start", "dependencies", "model_load", "first_ready"];
const BUILDER_PHASES = ["base", "install", "model_load"];
export const NOT_CALIBRATED = "estimate, not yet calibrated";

export function backendLabel(backend: string | null | undefined): string {
  if (!backend) return "any backend";
  return BACKENDS[backend] ?? backend;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Phases in their order (the known four first, then any other the API adds), ms only. */
function phaseList(raw: Record<string, unknown> | null | undefined, order: string[] = PHASE_ORDER): Phase[] {
  if (!raw || typeof raw !== "object") return [];
  const byName = new Map<string, number>();
  for (const [k, v] of Object.entries(raw)) {
    const n = num(v);
    if (n !== null) byName.set(k.replace(/_ms$/, ""), n);
  }
  const known = order.filter((k) => byName.has(k));
  const others = order === PHASE_ORDER ? [...byName.keys()].filter((k) => !order.includes(k)) : [];
  return [...known, ...others].map((k) => ({ key: k, label: PHASE_LABELS[k] ?? k.replace(/_/g, " "), ms: byName.get(k)! }));
}

/** The deployer's prediction (on a deployment or in `GET /cold-start`), or null when absent. */
export function prediction(p: ColdStartPrediction | null | undefined): PredictionView | null {
  if (!p || typeof p !== "object" || num(p.total_ms) === null) return null;
  return {
    backend: p.backend,
    backendLabel: backendLabel(p.backend),
    totalMs: p.total_ms,
    phases: phaseList(p.phases_ms),
    calibrated: p.calibrated === true,
    observations: num(p.observations),
    label: p.label || (p.calibrated ? "calibrated" : NOT_CALIBRATED),
    source: "deployer",
  };
}

/** The builder's backend-blind estimate of a version, never calibrated. */
export function builderEstimate(version: Pick<Version, "predicted_cold_start_ms" | "dependency_plan"> | null | undefined): PredictionView | null {
  const total = num(version?.predicted_cold_start_ms);
  if (total === null) return null;
  return {
    backend: null,
    backendLabel: backendLabel(null),
    totalMs: total,
    phases: phaseList((version?.dependency_plan?.cold_start ?? null) as Record<string, unknown> | null, BUILDER_PHASES),
    calibrated: false,
    observations: null,
    label: NOT_CALIBRATED,
    source: "builder",
  };
}

/** What the version page shows: the deployer's prediction for the backend in use (all of them
 * when it is not known), else - the route is absent - the builder's estimate. */
export function versionPredictions(
  version: Pick<Version, "predicted_cold_start_ms" | "dependency_plan"> | null | undefined,
  read: ColdStartRead | null | undefined,
  backendInUse: string | null = null,
): PredictionView[] {
  const list = (read?.predictions ?? []).map(prediction).filter((p): p is PredictionView => p !== null);
  if (list.length) {
    const inUse = backendInUse ? list.filter((p) => p.backend === backendInUse) : [];
    return inUse.length ? inUse : list;
  }
  const builder = builderEstimate(version);
  return builder ? [builder] : [];
}

/** A replica's measured cold start, or null until it has one. */
export function measured(raw: ReplicaColdStart | null | undefined): MeasuredView | null {
  if (!raw || typeof raw !== "object" || num(raw.total_ms) === null) return null;
  return { backend: raw.backend, backendLabel: backendLabel(raw.backend), totalMs: raw.total_ms, phases: phaseList(raw.phases_ms) };
}

export interface ReplicaColdStartRow {
  replica: ReplicaDetail;
  measured: MeasuredView;
}

/** The replicas that report a measured cold start (nothing when the API has none). */
export function replicaColdStarts(d: Pick<Deployment, "replica_details">): ReplicaColdStartRow[] {
  return (d.replica_details ?? [])
    .map((r) => ({ replica: r, measured: measured(r.cold_start) }))
    .filter((x): x is ReplicaColdStartRow => x.measured !== null);
}

/** A phase's predicted ms next to a measured one (null when the prediction lacks it). */
export function predictedPhase(p: PredictionView | null, key: string): number | null {
  return p?.phases.find((x) => x.key === key)?.ms ?? null;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** "2.1× the prediction" / "40 % under": how far a measurement is from its prediction. */
export function versus(measuredMs: number | null, predictedMs: number | null): string | null {
  if (measuredMs == null || predictedMs == null || predictedMs <= 0) return null;
  const ratio = measuredMs / predictedMs;
  if (ratio >= 0.995 && ratio <= 1.005) return "as predicted";
  if (ratio > 1) return ratio >= 2 ? `${ratio.toFixed(1)}× the prediction` : `${Math.round((ratio - 1) * 100)} % over the prediction`;
  return ratio <= 0.5 ? `${(1 / ratio).toFixed(1)}× faster than predicted` : `${Math.round((1 - ratio) * 100)} % under the prediction`;
}

// Predicted and measured cold starts, from whatever the API returns today and what it is
// gaining (issue 18): the builder's single `predicted_cold_start_ms` number; the deployer's
// per-backend prediction (`predicted_cold_start_ms` or `predicted_cold_start` as a map of
// backend -> ms or {total_ms, phases_ms, calibrated, observations}); the deployment's last
// rollout `cold_start` timings; and per replica `cold_start` phases. Every newer field is
// optional: absent ones fall back to the older numbers, never to an error.

import type { ColdStartPrediction, ColdStartPredictionMap, Deployment, ReplicaDetail, Version } from "./types";

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
  /** null: the API does not say (the builder's number is never calibrated). */
  calibrated: boolean | null;
  observations: number | null;
  source: "deployer" | "builder";
}

export interface MeasuredView {
  totalMs: number | null;
  /** Additive phases, in order, summing to about the total. */
  phases: Phase[];
  /** Other timings that are part of a phase (e.g. the model load inside the first health answer). */
  details: Phase[];
  backend: string | null;
}

const BACKENDS: Record<string, string> = {
  "local-warm-pool": "local, warm pool",
  "local-process": "local, plain process",
  "kubernetes-pod": "Kubernetes pod",
};
const LAUNCHERS: Record<string, string> = { pool: "local-warm-pool", process: "local-process", kubernetes: "kubernetes-pod" };

const PHASE_LABELS: Record<string, string> = {
  start: "start",
  dependencies: "dependencies",
  model_load: "model load",
  first_ready: "first ready",
  fetch: "fetch artifact",
  spawn: "start process",
  first_health: "first health answer",
  rollout: "pod rollout",
  base: "base runtime",
  install: "install wheels",
  request_to_ready: "request to ready",
};
const NEW_PHASES = ["start", "dependencies", "model_load", "first_ready"];
const OLD_PHASES = ["fetch", "spawn", "first_health", "rollout"];
const NOT_TIMES = new Set(["cache_hit", "wheels", "wheel_bytes", "total"]);

export function backendLabel(backend: string | null | undefined): string {
  if (!backend) return "any backend";
  return BACKENDS[backend] ?? backend;
}

/** A replica's launcher (`pool`, `process`, `kubernetes`) or backend name, as a backend. */
export function backendOf(name: string | null | undefined): string | null {
  if (!name) return null;
  return LAUNCHERS[name] ?? name;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function phaseList(raw: Record<string, unknown> | null | undefined, order: string[]): Phase[] {
  if (!raw) return [];
  const byName = new Map<string, number>();
  for (const [k, v] of Object.entries(raw)) {
    const n = num(v);
    if (n !== null) byName.set(k.replace(/_ms$/, ""), n);
  }
  return order.filter((k) => byName.has(k)).map((k) => ({ key: k, label: PHASE_LABELS[k] ?? k, ms: byName.get(k)! }));
}

function one(backend: string, value: ColdStartPrediction | number): PredictionView | null {
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? { backend, backendLabel: backendLabel(backend), totalMs: value, phases: [], calibrated: null, observations: null, source: "deployer" }
      : null;
  }
  if (!value || typeof value !== "object") return null;
  const phasesRaw = value.phases_ms ?? value.phases ?? null;
  const phases = phaseList(phasesRaw, NEW_PHASES);
  const total = num(value.total_ms) ?? num(value.predicted_ms) ?? num(value.ms) ?? (phases.length ? phases.reduce((a, p) => a + p.ms, 0) : null);
  if (total === null) return null;
  return {
    backend,
    backendLabel: backendLabel(backend),
    totalMs: total,
    phases,
    calibrated: typeof value.calibrated === "boolean" ? value.calibrated : value.label ? !/not yet/i.test(value.label) : null,
    observations: num(value.observations),
    source: "deployer",
  };
}

function fromMap(map: ColdStartPredictionMap | null | undefined): PredictionView[] {
  if (!map || typeof map !== "object") return [];
  return Object.entries(map)
    .map(([backend, v]) => one(backend, v))
    .filter((p): p is PredictionView => p !== null);
}

/** Every prediction known for a version (and its deployment, when given): the deployer's
 * per-backend ones when present, else the builder's single estimate. */
export function predictions(version: Pick<Version, "predicted_cold_start_ms" | "predicted_cold_start" | "dependency_plan"> | null | undefined,
  deployment?: Pick<Deployment, "predicted_cold_start_ms" | "predicted_cold_start"> | null): PredictionView[] {
  const found = [
    ...fromMap(deployment?.predicted_cold_start),
    ...(deployment && typeof deployment.predicted_cold_start_ms === "object" ? fromMap(deployment.predicted_cold_start_ms) : []),
    ...fromMap(version?.predicted_cold_start),
    ...(version && typeof version.predicted_cold_start_ms === "object" ? fromMap(version.predicted_cold_start_ms) : []),
  ];
  const unique = found.filter((p, i) => found.findIndex((q) => q.backend === p.backend) === i);
  if (unique.length) return unique;
  const builder = num(version?.predicted_cold_start_ms);
  if (builder === null) return [];
  const parts = (version?.dependency_plan?.cold_start ?? null) as Record<string, unknown> | null;
  return [{
    backend: null,
    backendLabel: backendLabel(null),
    totalMs: builder,
    phases: phaseList(parts, ["base", "install", "model_load"]),
    calibrated: false,
    observations: null,
    source: "builder",
  }];
}

/** The prediction for `backend`, else the only/backend-blind one. */
export function predictionFor(list: PredictionView[], backend: string | null): PredictionView | null {
  return list.find((p) => p.backend === backend) ?? list.find((p) => p.backend === null) ?? (list.length === 1 ? list[0]! : null);
}

/** Measured timings (ms) - the deployment's `cold_start`, or a replica's - as phases. */
export function measured(raw: unknown, backend: string | null = null): MeasuredView | null {
  if (!raw || typeof raw !== "object") return null;
  const obj = raw as Record<string, unknown>;
  const nested = obj.phases_ms && typeof obj.phases_ms === "object" ? (obj.phases_ms as Record<string, unknown>) : null;
  const source = nested ?? obj;
  // `model_load_ms` is in today's timings too (inside the first health answer): not a sign.
  const isNew = Object.keys(source).some((k) => ["start", "dependencies", "first_ready"].includes(k.replace(/_ms$/, "")));
  const phases = phaseList(source, isNew ? NEW_PHASES : OLD_PHASES);
  const used = new Set(phases.map((p) => p.key));
  const details = Object.entries(source)
    .filter(([k, v]) => num(v) !== null && k.endsWith("_ms") && !used.has(k.replace(/_ms$/, "")) && !NOT_TIMES.has(k.replace(/_ms$/, "")))
    .map(([k, v]) => ({ key: k.replace(/_ms$/, ""), label: PHASE_LABELS[k.replace(/_ms$/, "")] ?? k.replace(/_ms$/, "").replace(/_/g, " "), ms: v as number }));
  const total = num(obj.total_ms) ?? num(source.total_ms) ?? (phases.length ? phases.reduce((a, p) => a + p.ms, 0) : null);
  if (total === null && !phases.length) return null;
  const b = typeof obj.backend === "string" ? obj.backend : backend;
  return { totalMs: total, phases, details, backend: backendOf(b) };
}

export interface ReplicaColdStart {
  replica: ReplicaDetail;
  measured: MeasuredView | null;
}

/** Each replica with its own measured cold start when the API reports one. */
export function replicaColdStarts(d: Pick<Deployment, "replica_details" | "backend">): ReplicaColdStart[] {
  return (d.replica_details ?? []).map((r) => ({
    replica: r,
    measured: measured(r.cold_start, backendOf(r.backend ?? r.launcher ?? d.backend ?? null)),
  }));
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

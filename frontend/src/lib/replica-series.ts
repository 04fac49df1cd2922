// "Replicas over time", derived from what the API has: the deployment's recent activity
// entries that change its desired replica count (autoscaler decisions "scaled 1 -> 3: ...",
// manual scales, new revisions, autoscaling turned off), ending at the current count. There is
// no replica history endpoint, so the series covers the activity window the API returns
// (the last 20 entries) and nothing before it.

import type { DeploymentEvent } from "./types";

export interface ReplicaStep {
  /** Epoch milliseconds. */
  t: number;
  replicas: number;
  /** What set it: an activity entry's kind, or "now" for the current count. */
  kind: string;
  message: string;
}

export interface ReplicaSeries {
  steps: ReplicaStep[];
  start: number;
  end: number;
  max: number;
  /** Autoscaler decisions among the steps. */
  decisions: number;
}

const ARROW = "(?:->|→)";

/** The desired count an activity entry sets, and the count before it when it says. */
export function replicasFromEvent(e: DeploymentEvent): { from: number | null; to: number } | null {
  const m = e.message;
  let found = new RegExp(`^scaled (\\d+) ${ARROW} (\\d+)`).exec(m);
  if (found) return { from: Number(found[1]), to: Number(found[2]) };
  found = /^scale from (\d+) to (\d+) replicas?/.exec(m);
  if (found) return { from: Number(found[1]), to: Number(found[2]) };
  if (e.kind === "deploy_requested") {
    found = /(\d+) replica\(s\)\s*$/.exec(m);
    if (found) return { from: null, to: Number(found[1]) };
  }
  found = /^autoscaling off: a fixed (\d+) replica/.exec(m);
  if (found) return { from: null, to: Number(found[1]) };
  return null;
}

export function replicaSeries(events: DeploymentEvent[], current: number, now: number): ReplicaSeries {
  const changes = events
    .map((e) => ({ e, t: Date.parse(e.at), r: replicasFromEvent(e) }))
    .filter((x): x is { e: DeploymentEvent; t: number; r: { from: number | null; to: number } } => x.r !== null && Number.isFinite(x.t))
    .sort((a, b) => a.t - b.t);
  const steps: ReplicaStep[] = [];
  for (const { e, t, r } of changes) {
    // The first change that names its "from" tells what ran before it.
    if (steps.length === 0 && r.from !== null) steps.push({ t, replicas: r.from, kind: "before", message: "" });
    steps.push({ t, replicas: r.to, kind: e.kind, message: e.message });
  }
  const end = Math.max(now, steps.length ? steps[steps.length - 1]!.t : now);
  // The current count is the truth (a change may be older than the activity window, or the
  // row may have moved on since the last entry).
  steps.push({ t: end, replicas: current, kind: "now", message: `${current} desired now` });
  const start = steps[0]!.t;
  return {
    steps,
    start,
    end,
    max: Math.max(1, ...steps.map((s) => s.replicas)),
    decisions: changes.filter((c) => c.e.kind === "autoscaled").length,
  };
}

/** An SVG step path of `series` in a `width` x `height` box (y grows down, `pad` inside). */
export function stepPath(series: ReplicaSeries, width: number, height: number, pad = 4): string {
  const span = Math.max(1, series.end - series.start);
  const x = (t: number) => ((t - series.start) / span) * (width - 2 * pad) + pad;
  const y = (r: number) => height - pad - (r / series.max) * (height - 2 * pad);
  if (series.steps.length === 1) {
    // Only the current count is known: a flat line across the box.
    return `M${pad},${y(series.steps[0]!.replicas).toFixed(1)} H${width - pad}`;
  }
  let d = "";
  let last: number | null = null;
  for (const s of series.steps) {
    const px = x(s.t).toFixed(1);
    if (last === null) d += `M${px},${y(s.replicas).toFixed(1)}`;
    else d += ` H${px} V${y(s.replicas).toFixed(1)}`;
    last = s.replicas;
  }
  return d;
}

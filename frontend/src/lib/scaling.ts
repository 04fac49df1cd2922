// The deployment page's scaling form: a fixed count or the autoscaler's settings, as the
// `PATCH /deployments/{id}` body, and a one-line description of what a deployment runs.

import type { AutoscalingSettings, Deployment } from "./types";

const DEFAULTS: AutoscalingSettings = { min_replicas: 1, max_replicas: 3, target_concurrency: 2, scale_to_zero_after_s: null };

export function describeScaling(d: Pick<Deployment, "autoscaling" | "replicas">): string {
  const a = d.autoscaling;
  if (!a) return `fixed ${d.replicas.desired} ${d.replicas.desired === 1 ? "replica" : "replicas"}`;
  const zero = a.min_replicas === 0 ? `, to zero after ${a.scale_to_zero_after_s ?? "the default"}${a.scale_to_zero_after_s ? " s" : ""} idle` : "";
  return `autoscaling ${a.min_replicas}–${a.max_replicas} replicas, target ${a.target_concurrency} in flight per replica${zero}`;
}

export interface Draft {
  mode: "fixed" | "auto";
  replicas: string;
  min: string;
  max: string;
  target: string;
  zeroAfter: string;
}

export function draftOf(d: Deployment): Draft {
  const a = d.autoscaling ?? DEFAULTS;
  return {
    mode: d.autoscaling ? "auto" : "fixed",
    replicas: String(d.autoscaling ? Math.max(1, d.replicas.desired) : d.replicas.desired),
    min: String(a.min_replicas),
    max: String(a.max_replicas),
    target: String(a.target_concurrency),
    zeroAfter: a.scale_to_zero_after_s == null ? "" : String(a.scale_to_zero_after_s),
  };
}

/** The PATCH body of a draft. Numbers are sent as typed (the API validates and says what is
 * wrong); an empty field is left out so the API's default applies. */
export function patchBody(draft: Draft): Record<string, unknown> {
  const n = (s: string) => (s.trim() === "" ? undefined : Number(s));
  if (draft.mode === "fixed") return { replicas: n(draft.replicas) ?? null };
  const autoscaling: Record<string, unknown> = {
    min_replicas: n(draft.min),
    max_replicas: n(draft.max),
    target_concurrency: n(draft.target),
  };
  if (n(draft.min) === 0 && n(draft.zeroAfter) !== undefined) autoscaling.scale_to_zero_after_s = n(draft.zeroAfter);
  for (const k of Object.keys(autoscaling)) if (autoscaling[k] === undefined) delete autoscaling[k];
  return { autoscaling };
}

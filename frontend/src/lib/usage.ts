// Shaping `GET /api/v1/usage` for the usage page: one bar per resource (reserved and running
// against the quota), readable amounts, and per deployment its share of the quota.

import type { Resources, Usage } from "./types";

export type ResourceName = keyof Resources;

export interface UsageBar {
  resource: ResourceName;
  label: string;
  quota: number;
  reserved: number;
  running: number;
  available: number;
  /** Percent of the quota, 0..100 (clamped: a lowered quota can leave usage above it). */
  reservedPct: number;
  runningPct: number;
  text: string;
}

const LABELS: Record<ResourceName, string> = { replicas: "Replicas", cpu: "CPU", memory_mib: "Memory" };

export function formatAmount(resource: ResourceName, n: number): string {
  if (resource === "memory_mib") {
    return n >= 1024 ? `${+(n / 1024).toFixed(2)} GiB` : `${Math.round(n)} MiB`;
  }
  if (resource === "cpu") return `${+n.toFixed(3)} CPU`;
  return `${n} ${n === 1 ? "replica" : "replicas"}`;
}

function pct(part: number, whole: number): number {
  if (whole <= 0) return part > 0 ? 100 : 0;
  return Math.min(100, Math.max(0, Math.round((part / whole) * 1000) / 10));
}

export function usageBars(usage: Usage): UsageBar[] {
  return (["replicas", "cpu", "memory_mib"] as ResourceName[]).map((resource) => {
    const quota = usage.quota[resource];
    const reserved = usage.in_use[resource];
    const running = usage.running[resource];
    const available = usage.available[resource];
    return {
      resource,
      label: LABELS[resource],
      quota,
      reserved,
      running,
      available,
      reservedPct: pct(reserved, quota),
      runningPct: pct(running, quota),
      text: `${formatAmount(resource, reserved)} of ${formatAmount(resource, quota)} in use, ${formatAmount(resource, running)} running, ${formatAmount(resource, available)} free`,
    };
  });
}

/** The resource closest to its limit: the one that decides whether more fits. */
export function tightest(bars: UsageBar[]): UsageBar | null {
  return bars.reduce<UsageBar | null>((a, b) => (a === null || b.reservedPct > a.reservedPct ? b : a), null);
}

/** Replicas the tenant could still add, read from the bars (what the API's `more_replicas_fit`
 * says; used to cross-check the page against the API in tests). */
export function replicasThatFit(usage: Usage): number {
  const per = usage.new_deployment.needs;
  const limits = (["replicas", "cpu", "memory_mib"] as ResourceName[])
    .filter((r) => per[r] > 0)
    .map((r) => Math.floor((usage.available[r] + 1e-9) / per[r]));
  return Math.max(0, Math.min(...limits));
}

"use client";

import type { ClientConfig, MetricsPoint } from "@/lib/types";
import { useDeploymentMetrics } from "@/lib/queries";
import { ErrorAlert, Spinner } from "./ui";

export function GrafanaPanels({ grafana, deploymentId }: { grafana: NonNullable<ClientConfig["grafana"]>; deploymentId: string }) {
  const full = `${grafana.url}/d/${encodeURIComponent(grafana.dashboard_uid)}/kubeserve?orgId=1&var-deployment=${encodeURIComponent(deploymentId)}`;
  return (
    <div>
    <div className="grid gap-3 md:grid-cols-2">
      {grafana.panels.map((panel) => {
        const src = `${grafana.url}/d-solo/${encodeURIComponent(grafana.dashboard_uid)}/kubeserve?orgId=1&panelId=${panel}` +
          `&var-deployment=${encodeURIComponent(deploymentId)}&from=now-1h&to=now&refresh=30s&theme=light`;
        return <iframe key={panel} src={src} title={`Grafana panel ${panel}`} className="h-64 w-full rounded-md border border-slate-200" loading="lazy" />;
      })}
    </div>
    <p className="mt-2 text-xs text-slate-500">
      Panels from Grafana. <a className="link" href={full} target="_blank" rel="noopener noreferrer">Open the dashboard</a> for more.
    </p>
    </div>
  );
}

function Sparkline({ points, value, label, format, color }: {
  points: MetricsPoint[]; value(p: MetricsPoint): number | null; label: string; format(n: number): string; color: string;
}) {
  const w = 300;
  const h = 64;
  const values = points.map(value);
  const max = Math.max(...values.map((v) => v ?? 0), 1e-9);
  const step = points.length > 1 ? w / (points.length - 1) : w;
  const path = values
    .map((v, i) => `${i === 0 ? "M" : "L"}${(i * step).toFixed(1)},${(h - ((v ?? 0) / max) * (h - 4) - 2).toFixed(1)}`)
    .join(" ");
  const last = [...values].reverse().find((v) => v !== null && v !== undefined);
  return (
    <figure className="rounded-md border border-slate-200 p-3">
      <figcaption className="flex items-baseline justify-between text-xs text-slate-500">
        <span>{label}</span>
        <span className="text-sm font-semibold text-slate-900">{last != null ? format(last) : "—"}</span>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} className="mt-2 h-16 w-full" preserveAspectRatio="none" role="img"
        aria-label={`${label}, last 15 minutes; peak ${format(max)}`}>
        <path d={path} fill="none" stroke={color} strokeWidth={2} vectorEffect="non-scaling-stroke" />
      </svg>
    </figure>
  );
}

export function BuiltInMetrics({ deploymentId }: { deploymentId: string }) {
  const metrics = useDeploymentMetrics(deploymentId, true);
  if (metrics.isPending) return <Spinner label="Loading metrics…" />;
  if (metrics.error) return <ErrorAlert error={metrics.error} title="Could not load metrics" />;
  const m = metrics.data;
  return (
    <div data-testid="builtin-metrics">
      <div className="grid gap-3 md:grid-cols-3">
        <Sparkline points={m.points} value={(p) => p.rps} label="Requests / s" format={(n) => n.toFixed(2)} color="#4f46e5" />
        <Sparkline points={m.points} value={(p) => (p.requests ? p.error_rate * 100 : null)} label="Errors (%)" format={(n) => `${n.toFixed(1)}%`} color="#dc2626" />
        <Sparkline points={m.points} value={(p) => p.p95_ms} label="p95 latency (ms, upper bound)" format={(n) => `${n} ms`} color="#059669" />
      </div>
      <p className="mt-2 text-xs text-slate-500">
        {m.totals.requests} predictions in the last {Math.round(m.window_seconds / 60)} min, {m.totals.errors} errors
        {m.totals.p95_ms != null ? `, p95 ≤ ${m.totals.p95_ms} ms` : ""}. Measured at the gateway ({m.scope}), in {m.bucket_seconds}-second buckets;
        refusals for credentials or rate limits are not counted.
      </p>
    </div>
  );
}

"use client";

// The deployment page's scaling card: what it runs (a fixed count or the autoscaler's
// min/max/target/scale-to-zero), a form that PATCHes either, with the API's 422 / 409 message
// inline, and the replicas-over-time chart (lib/replica-series.ts).

import { useEffect, useId, useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { SpinnerIcon } from "@/components/icons";
import { ErrorAlert, formatTime } from "@/components/ui";
import { api } from "@/lib/client";
import { replicaSeries, stepPath } from "@/lib/replica-series";
import { draftOf, patchBody, describeScaling, type Draft } from "@/lib/scaling";
import type { Deployment } from "@/lib/types";

export function ScalingCard({ deployment }: { deployment: Deployment }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [draft, setDraft] = useState<Draft>(() => draftOf(deployment));
  const [dirty, setDirty] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const serverDraft = JSON.stringify(draftOf(deployment));

  // Until the user edits, the form follows the deployment (the autoscaler changes the count).
  useEffect(() => {
    if (!dirty) setDraft(JSON.parse(serverDraft) as Draft);
  }, [serverDraft, dirty]);

  const edit = (patch: Partial<Draft>) => {
    setDraft((d) => ({ ...d, ...patch }));
    setDirty(true);
    setSaved(false);
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      await api.patch(`/deployments/${deployment.id}`, patchBody(draft));
      setDirty(false);
      setSaved(true);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: ["deployment", deployment.id] }),
        queryClient.invalidateQueries({ queryKey: ["usage"] }),
      ]);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const field = (key: keyof Draft, label: string, extra: { min?: number; step?: string; hint?: string } = {}) => (
    <div>
      <label htmlFor={`${id}-${key}`} className="label">{label}</label>
      <input id={`${id}-${key}`} type="number" className="input w-28" min={extra.min} step={extra.step ?? "1"}
        value={draft[key]} onChange={(e) => edit({ [key]: e.target.value } as Partial<Draft>)} />
      {extra.hint && <p className="mt-0.5 text-xs text-slate-500">{extra.hint}</p>}
    </div>
  );

  return (
    <div className="space-y-4">
      <p className="text-sm">
        <span data-testid="scaling-summary" className="font-medium">{describeScaling(deployment)}</span>
        <span className="text-slate-500"> · {deployment.replicas.ready}/{deployment.replicas.desired} ready</span>
      </p>
      <form onSubmit={save} aria-label="Scaling settings" className="space-y-3">
        <div className="flex flex-wrap gap-4 text-sm" role="radiogroup" aria-label="Scaling mode">
          <label className="flex items-center gap-1.5">
            <input type="radio" name={`${id}-mode`} checked={draft.mode === "fixed"} onChange={() => edit({ mode: "fixed" })} /> Fixed count
          </label>
          <label className="flex items-center gap-1.5">
            <input type="radio" name={`${id}-mode`} checked={draft.mode === "auto"} onChange={() => edit({ mode: "auto" })} /> Autoscale on requests in flight
          </label>
        </div>
        <div className="flex flex-wrap items-start gap-4">
          {draft.mode === "fixed" ? field("replicas", "Replicas", { min: 1 }) : (
            <>
              {field("min", "Min replicas", { min: 0, hint: "0: scale to zero when idle" })}
              {field("max", "Max replicas", { min: 1 })}
              {field("target", "Target concurrency", { min: 0, step: "any", hint: "requests in flight per replica" })}
              {draft.min.trim() === "0" && field("zeroAfter", "Scale to zero after (s)", { min: 1, hint: "idle seconds; empty: the default" })}
            </>
          )}
        </div>
        <div className="flex items-center gap-3">
          <button type="submit" className="btn btn-primary" disabled={busy || !dirty}>{busy && <SpinnerIcon />} Save scaling</button>
          {dirty && <button type="button" className="btn" onClick={() => { setDirty(false); setError(null); }}>Discard</button>}
          {saved && <span role="status" className="text-sm text-emerald-700" data-testid="scaling-saved">Saved</span>}
        </div>
        <ErrorAlert error={error} title="The scaling change was refused" />
      </form>
      <ReplicaChart deployment={deployment} />
    </div>
  );
}

const W = 600;
const H = 120;

export function ReplicaChart({ deployment }: { deployment: Deployment }) {
  // Re-derived on every refetch of the deployment (its activity carries the decisions).
  const series = replicaSeries(deployment.events, deployment.replicas.desired, Date.now());
  const d = stepPath(series, W, H);
  const last = series.steps.filter((s) => s.kind !== "now" && s.kind !== "before").slice(-4).reverse();
  return (
    <figure className="space-y-1" aria-label="Replicas over time">
      <figcaption className="flex flex-wrap justify-between text-xs text-slate-500">
        <span className="font-medium text-slate-700">Replicas over time (desired)</span>
        <span data-testid="replica-decisions">{series.decisions} autoscaler {series.decisions === 1 ? "decision" : "decisions"} in the recent activity</span>
      </figcaption>
      <div className="flex gap-1">
        <div className="flex h-[120px] flex-col justify-between text-right text-xs text-slate-500" aria-hidden>
          <span>{series.max}</span>
          <span>0</span>
        </div>
        <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className="h-[120px] w-full rounded border border-slate-200 bg-slate-50"
          role="img" aria-label={`Desired replicas from ${series.steps[0]?.replicas ?? 0} to ${deployment.replicas.desired} now`} data-testid="replica-chart">
          <path d={d} fill="none" stroke="#4f46e5" strokeWidth={2} vectorEffect="non-scaling-stroke" />
        </svg>
      </div>
      <div className="flex justify-between text-xs text-slate-500">
        <time dateTime={new Date(series.start).toISOString()}>{formatTime(new Date(series.start).toISOString())}</time>
        <span>now</span>
      </div>
      {last.length > 0 && (
        <ul className="text-xs text-slate-600">
          {last.map((s, i) => <li key={`${s.t}-${i}`}><time className="text-slate-500" dateTime={new Date(s.t).toISOString()}>{formatTime(new Date(s.t).toISOString())}</time> · {s.message}</li>)}
        </ul>
      )}
    </figure>
  );
}

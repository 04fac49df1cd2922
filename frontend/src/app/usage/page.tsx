"use client";

import Link from "next/link";
import { AppShell, PageHeader } from "@/components/app-shell";
import { ErrorAlert, Spinner, StatusBadge, useDocumentTitle } from "@/components/ui";
import { useUsage } from "@/lib/queries";
import type { Resources, UsageNeed } from "@/lib/types";
import { formatAmount, tightest, usageBars, type UsageBar } from "@/lib/usage";

export default function UsagePage() {
  return (
    <AppShell>
      <UsageView />
    </AppShell>
  );
}

function resources(r: Resources): string {
  return `${formatAmount("replicas", r.replicas)}, ${formatAmount("cpu", r.cpu)}, ${formatAmount("memory_mib", r.memory_mib)}`;
}

function UsageView() {
  useDocumentTitle("Usage");
  const usage = useUsage();
  const u = usage.data;
  return (
    <>
      <PageHeader title="Usage">Your replicas, CPU and memory against your quota.</PageHeader>
      {usage.isPending && <Spinner />}
      <ErrorAlert error={usage.error} title="Could not load your usage" />
      {u && (
        <div className="space-y-4">
          <section className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5" aria-label="Quota">
            <div className="grid gap-4 sm:grid-cols-3">
              {usageBars(u).map((bar) => <Bar key={bar.resource} bar={bar} tight={tightest(usageBars(u))?.resource === bar.resource && bar.reservedPct >= 80} />)}
            </div>
            <p className="mt-3 text-xs text-slate-500">
              <span className="mr-1 inline-block h-2 w-3 rounded-sm bg-indigo-300 align-middle" /> reserved by your deployments&apos; desired replicas (what the quota counts)
              <span className="ml-3 mr-1 inline-block h-2 w-3 rounded-sm bg-indigo-600 align-middle" /> ready and running now
            </p>
          </section>
          <section className="grid gap-4 sm:grid-cols-2" aria-label="What fits">
            <Need title="A new deployment" need={u.new_deployment} testid="need-new-deployment" />
            <Need title="One more replica (scale-up)" need={u.scale_up} testid="need-scale-up" />
          </section>
          <p className="text-sm" data-testid="more-replicas-fit">
            {u.more_replicas_fit === 0 ? "No more replicas fit in your quota." : `${u.more_replicas_fit} more ${u.more_replicas_fit === 1 ? "replica fits" : "replicas fit"} in your quota, all deployments together.`}
          </p>
          <section className="overflow-x-auto rounded-lg border border-slate-200 bg-white" aria-label="Per deployment">
            {u.deployments.length === 0 ? (
              <p className="p-4 text-sm text-slate-500">No active deployment: nothing counts against your quota.</p>
            ) : (
              <table className="w-full text-left text-sm">
                <thead className="bg-slate-50 text-xs text-slate-500">
                  <tr>
                    <th className="px-4 py-2 font-medium">Deployment</th>
                    <th className="px-4 py-2 font-medium">Replicas (ready/desired)</th>
                    <th className="px-4 py-2 font-medium">Reserved</th>
                    <th className="px-4 py-2 font-medium">Running</th>
                    <th className="px-4 py-2 font-medium">Can still add</th>
                  </tr>
                </thead>
                <tbody>
                  {u.deployments.map((d) => (
                    <tr key={d.id} className="border-t border-slate-100" data-testid="usage-row" data-deployment={d.id}>
                      <td className="px-4 py-2">
                        <Link className="link font-medium" href={`/deployments/detail/?id=${d.id}`}>{d.name}</Link>{" "}
                        <StatusBadge status={d.status} />
                      </td>
                      <td className="px-4 py-2">{d.replicas.ready ?? 0}/{d.replicas.desired ?? 0}{d.autoscaling_max_replicas != null ? ` (autoscaling up to ${d.autoscaling_max_replicas})` : ""}</td>
                      <td className="px-4 py-2 text-xs">{resources(d.reserved)}</td>
                      <td className="px-4 py-2 text-xs">{resources(d.running)}</td>
                      <td className="px-4 py-2">{d.can_add_replicas} {d.can_add_replicas === 1 ? "replica" : "replicas"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </div>
      )}
    </>
  );
}

function Bar({ bar, tight }: { bar: UsageBar; tight: boolean }) {
  return (
    <div data-testid="usage-bar" data-resource={bar.resource} data-reserved={bar.reserved} data-running={bar.running} data-quota={bar.quota}>
      <div className="flex items-baseline justify-between">
        <span className="font-medium">{bar.label}</span>
        <span className="text-sm text-slate-600" data-testid={`usage-${bar.resource}`}>
          {bar.resource === "replicas" ? `${bar.reserved} of ${bar.quota}` : `${formatAmount(bar.resource, bar.reserved)} of ${formatAmount(bar.resource, bar.quota)}`}
        </span>
      </div>
      <div className="relative mt-1 h-3 overflow-hidden rounded-full bg-slate-100" role="meter" aria-label={`${bar.label} in use`}
        aria-valuemin={0} aria-valuemax={bar.quota} aria-valuenow={bar.reserved} aria-valuetext={bar.text}>
        <div className={`absolute inset-y-0 left-0 ${tight ? "bg-amber-300" : "bg-indigo-300"}`} style={{ width: `${bar.reservedPct}%` }} />
        <div className="absolute inset-y-0 left-0 bg-indigo-600" style={{ width: `${bar.runningPct}%` }} />
      </div>
      <p className="mt-1 text-xs text-slate-500">{bar.text}</p>
    </div>
  );
}

function Need({ title, need, testid }: { title: string; need: UsageNeed; testid: string }) {
  return (
    <div className={`rounded-lg border p-4 text-sm ${need.fits ? "border-emerald-200 bg-emerald-50" : "border-amber-300 bg-amber-50"}`} data-testid={testid} data-fits={String(need.fits)}>
      <p className="font-medium">{title}: {need.fits ? "fits" : "does not fit"}</p>
      <p className="mt-1 text-slate-700">{need.message}</p>
    </div>
  );
}

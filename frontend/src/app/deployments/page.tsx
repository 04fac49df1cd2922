"use client";

import Link from "next/link";
import { useState } from "react";
import { AppShell, PageHeader } from "@/components/app-shell";
import { CubeIcon } from "@/components/icons";
import { EmptyState, ErrorAlert, Pagination, Spinner, StatusBadge, formatTime, useDocumentTitle } from "@/components/ui";
import { PAGE_SIZE, useDeployments } from "@/lib/queries";

export default function DeploymentsPage() {
  return (
    <AppShell>
      <Deployments />
    </AppShell>
  );
}

function Deployments() {
  useDocumentTitle("Deployments");
  const [offset, setOffset] = useState(0);
  const deployments = useDeployments(offset);
  return (
    <>
      <PageHeader title="Deployments">Live prediction endpoints of your Ready model versions.</PageHeader>
      {deployments.isPending && <Spinner />}
      <ErrorAlert error={deployments.error} title="Could not load your deployments" />
      {deployments.data?.items.length === 0 && (
        <EmptyState title="Nothing deployed yet" action={<Link href="/models/" className="btn btn-primary"><CubeIcon /> Pick a Ready model</Link>}>
          Deploy a Ready version from its model page.
        </EmptyState>
      )}
      {!!deployments.data?.items.length && (
        <ul className="divide-y divide-slate-200 overflow-hidden rounded-lg border border-slate-200 bg-white" aria-label="Deployments">
          {deployments.data.items.map((d) => (
            <li key={d.id} data-testid="deployment-row">
              <Link href={`/deployments/detail/?id=${d.id}`} className="flex flex-wrap items-center gap-x-4 gap-y-1 px-4 py-3 hover:bg-slate-50">
                <span className="min-w-40 flex-1">
                  <span className="block font-medium">{d.name}</span>
                  <span className="block text-xs text-slate-500">version {d.version_tag ?? "?"} · revision {d.revision}</span>
                </span>
                <StatusBadge status={d.status} />
                <span className="text-sm text-slate-600">{d.replicas.ready}/{d.replicas.desired} ready</span>
                <span className="w-44 text-right text-xs text-slate-500">updated {formatTime(d.updated_at)}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
      {deployments.data && (
        <Pagination label="Deployments" offset={offset} limit={PAGE_SIZE} total={deployments.data.total} onChange={setOffset} />
      )}
    </>
  );
}

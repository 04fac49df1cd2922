"use client";

import Link from "next/link";
import { useState } from "react";
import { AppShell, PageHeader } from "@/components/app-shell";
import { UploadIcon } from "@/components/icons";
import { EmptyState, ErrorAlert, Pagination, Spinner, StatusBadge, formatTime, useDocumentTitle } from "@/components/ui";
import { PAGE_SIZE, useModels } from "@/lib/queries";

export default function ModelsPage() {
  return (
    <AppShell>
      <ModelHub />
    </AppShell>
  );
}

function ModelHub() {
  useDocumentTitle("Models");
  const [offset, setOffset] = useState(0);
  const models = useModels(offset);
  return (
    <>
      <PageHeader title="Models" actions={<Link href="/upload/" className="btn btn-primary"><UploadIcon /> Upload a model</Link>}>
        Your models and the state of their latest version. Builds update here live.
      </PageHeader>
      {models.isPending && <Spinner />}
      <ErrorAlert error={models.error} title="Could not load your models" />
      {models.data && models.data.items.length === 0 && (
        <EmptyState title="No models yet"
          action={<Link href="/upload/" className="btn btn-primary"><UploadIcon /> Upload your first model</Link>}>
          Drop a trained model file (for example <code>model.joblib</code>) and get a live prediction URL.
        </EmptyState>
      )}
      {models.data && models.data.items.length > 0 && (
        <ul className="divide-y divide-slate-200 overflow-hidden rounded-lg border border-slate-200 bg-white" aria-label="Models">
          {models.data.items.map((model) => (
            <li key={model.id} data-testid="model-row" data-model={model.name}>
              <Link href={`/models/detail/?id=${model.id}`} className="flex flex-wrap items-center gap-x-4 gap-y-1 px-4 py-3 hover:bg-slate-50">
                <span className="min-w-40 flex-1">
                  <span className="block font-medium text-slate-900">{model.name}</span>
                  <span className="block text-xs text-slate-500">{model.framework}{model.description ? ` · ${model.description}` : ""}</span>
                </span>
                <span className="flex items-center gap-2 text-sm">
                  {model.latest_version ? (
                    <>
                      <span className="font-mono text-slate-600">{model.latest_version.version_tag}</span>
                      <StatusBadge status={model.latest_version.status} />
                    </>
                  ) : (
                    <span className="text-slate-500">no version yet</span>
                  )}
                </span>
                <span className="w-44 text-right text-xs text-slate-500">created {formatTime(model.created_at)}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
      {models.data && (
        <Pagination label="Models" offset={offset} limit={PAGE_SIZE} total={models.data.total} onChange={setOffset} />
      )}
    </>
  );
}

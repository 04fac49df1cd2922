"use client";

import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { AppShell, PageHeader } from "@/components/app-shell";
import { DeployForm } from "@/components/deploy-form";
import { UploadIcon } from "@/components/icons";
import { Card, ConfirmButton, EmptyState, ErrorAlert, Pagination, Spinner, formatTime, useDocumentTitle } from "@/components/ui";
import { VersionDetails, VersionHeader } from "@/components/version-details";
import { api } from "@/lib/client";
import { PAGE_SIZE, useModel, useVersions } from "@/lib/queries";

export default function ModelDetailPage() {
  return (
    <AppShell>
      <Suspense fallback={<Spinner />}>
        <ModelDetail />
      </Suspense>
    </AppShell>
  );
}

function ModelDetail() {
  const id = useSearchParams().get("id");
  const router = useRouter();
  const queryClient = useQueryClient();
  const [offset, setOffset] = useState(0);
  const model = useModel(id);
  const versions = useVersions(id, offset);
  useDocumentTitle(model.data?.name ?? "Model");

  const back = <p className="mb-2 text-sm"><Link href="/models/" className="link">← Models</Link></p>;
  if (!id) return <>{back}<ErrorAlert error={new Error("No model selected.")} /></>;
  if (model.isPending) return <Spinner />;
  if (model.error) return <>{back}<ErrorAlert error={model.error} title="Could not load this model" /></>;
  const m = model.data;

  const remove = async () => {
    await api.delete(`/models/${m.id}`);
    await queryClient.invalidateQueries({ queryKey: ["models"] });
    router.push("/models/");
  };

  return (
    <>
      {back}
      <PageHeader
        title={m.name}
        actions={
          <div className="flex gap-2">
            <Link href={`/upload/?model=${m.id}`} className="btn btn-primary"><UploadIcon /> New version</Link>
            <ConfirmButton label="Delete model" title="Delete this model?" confirmLabel="Delete model" onConfirm={remove}
              body={<>This deletes <strong>{m.name}</strong> and all its versions. Deployments of it must be deleted first.</>} />
          </div>
        }>
        {m.framework}{m.description ? ` · ${m.description}` : ""} · created {formatTime(m.created_at)}
      </PageHeader>
      <ErrorAlert error={versions.error} title="Could not load the versions" />
      {versions.data && versions.data.items.length === 0 && (
        <EmptyState title="No versions yet" action={<Link href={`/upload/?model=${m.id}`} className="btn btn-primary"><UploadIcon /> Upload a version</Link>}>
          Upload a model file to create v1.
        </EmptyState>
      )}
      <div className="space-y-4">
        {versions.data?.items.map((version) => (
          <Card key={version.id} title={<VersionHeader version={version} />}
            actions={<span className="text-xs text-slate-500">uploaded {formatTime(version.created_at)}</span>}>
            <div data-testid="version" data-version={version.version_tag}>
              <VersionDetails version={version} />
              {version.status === "Ready" && (
                <div className="mt-4 border-t border-slate-100 pt-4">
                  <DeployForm versionId={version.id} defaultName={m.name} />
                </div>
              )}
            </div>
          </Card>
        ))}
      </div>
      {versions.data && (
        <Pagination label="Versions" offset={offset} limit={PAGE_SIZE} total={versions.data.total} onChange={setOffset} />
      )}
    </>
  );
}

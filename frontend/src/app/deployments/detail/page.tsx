"use client";

import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useEffect, useId, useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { AppShell, PageHeader } from "@/components/app-shell";
import { SpinnerIcon } from "@/components/icons";
import { ScalingCard } from "@/components/autoscaling";
import { ColdStartPanel, hasColdStart } from "@/components/cold-start";
import { LogsPanel } from "@/components/logs";
import { BuiltInMetrics, GrafanaPanels } from "@/components/metrics";
import { Card, CodeBlock, ConfirmButton, CopyButton, ErrorAlert, Spinner, StatusBadge, formatTime, useDocumentTitle } from "@/components/ui";
import { api } from "@/lib/client";
import { useClientConfig, useDeployment, useVersion, useVersions } from "@/lib/queries";
import { curlOip, curlSimple, exampleBody, oipBody, prettyJson, pythonOip, pythonSimple } from "@/lib/snippets";
import type { Deployment, Signature } from "@/lib/types";

export default function DeploymentPage() {
  return (
    <AppShell>
      <Suspense fallback={<Spinner />}>
        <DeploymentView />
      </Suspense>
    </AppShell>
  );
}

function DeploymentView() {
  const id = useSearchParams().get("id");
  const deployment = useDeployment(id);
  const d = deployment.data;
  const version = useVersion(d?.model_id ?? null, d?.version_id ?? null);
  const config = useClientConfig();
  useDocumentTitle(d?.name ?? "Deployment");

  const back = <p className="mb-2 text-sm"><Link href="/deployments/" className="link">← Deployments</Link></p>;
  if (!id) return <>{back}<ErrorAlert error={new Error("No deployment selected.")} /></>;
  if (deployment.isPending) return <Spinner />;
  if (deployment.error || !d) return <>{back}<ErrorAlert error={deployment.error} title="Could not load this deployment" /></>;
  const signature = version.data?.signature ?? null;
  const grafana = config.data?.grafana ?? null;

  return (
    <>
      {back}
      <PageHeader title={d.name} actions={<StatusBadge status={d.status} />}>
        <span data-testid="deployment-summary">
          version <span className="font-mono">{d.version_tag ?? "?"}</span> · revision {d.revision}
          {d.serving_revision && d.serving_revision !== d.revision ? ` (serving ${d.serving_revision})` : ""} · {d.replicas.ready}/{d.replicas.desired} replicas ready
        </span>{" "}·{" "}
        <Link className="link" href={`/models/detail/?id=${d.model_id}`}>model</Link>
      </PageHeader>
      <div className="space-y-4">
        {d.failure_reason && <ErrorAlert error={new Error(d.failure_reason)} title="The last rollout failed" />}
        <Card title="Live URL">
          <div className="flex flex-wrap items-center gap-2">
            <code data-testid="live-url" className="min-w-0 flex-1 break-all rounded-md bg-slate-100 px-3 py-2 text-sm">{d.url}</code>
            <CopyButton text={d.url} label="Copy URL" />
          </div>
          <p className="mt-2 text-xs text-slate-500">
            Call it with an <Link className="link" href="/api-keys/">API key</Link> in <code>Authorization: Bearer …</code>.
            {d.status !== "Running" && " Predictions are answered once the deployment is Running."}
          </p>
        </Card>
        <Playground deployment={d} signature={signature} />
        <Snippets deployment={d} signature={signature} />
        <Card title="Metrics">
          {grafana ? <GrafanaPanels grafana={grafana} deploymentId={d.id} /> : <BuiltInMetrics deploymentId={d.id} />}
        </Card>
        <Card title="Scaling">
          <ScalingCard deployment={d} />
        </Card>
        {hasColdStart(d) && (
          <Card title="Cold start">
            <ColdStartPanel deployment={d} />
          </Card>
        )}
        <Card title="Logs">
          <LogsPanel deployment={d} />
        </Card>
        <Manage deployment={d} />
        <Card title="Activity">
          <ol className="space-y-1 text-sm" aria-label="Deployment events">
            {[...d.events].reverse().slice(0, 20).map((e, i) => (
              <li key={`${e.at}-${i}`} className="flex flex-wrap gap-x-3">
                <time className="w-44 shrink-0 text-xs text-slate-500" dateTime={e.at}>{formatTime(e.at)}</time>
                <span className="font-medium">{e.kind.replace(/_/g, " ")}</span>
                <span className="text-slate-600">{e.message}</span>
              </li>
            ))}
          </ol>
        </Card>
      </div>
    </>
  );
}

function Playground({ deployment, signature }: { deployment: Deployment; signature: Signature | null }) {
  const id = useId();
  const queryClient = useQueryClient();
  const [protocol, setProtocol] = useState<"simple" | "oip">("simple");
  const example = prettyJson(protocol === "simple" ? exampleBody(signature) : oipBody(signature));
  const [body, setBody] = useState(example);
  const [edited, setEdited] = useState(false);
  const [result, setResult] = useState<unknown>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  // Until the user edits it, the body follows the signature (which may load after the page).
  useEffect(() => {
    if (!edited) setBody(example);
  }, [example, edited]);

  const send = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch (err) {
      setError(new Error(`The request body is not valid JSON: ${(err as Error).message}`));
      return;
    }
    setBusy(true);
    try {
      const path = protocol === "simple"
        ? `/predict/${deployment.id}`
        : `/predict/${deployment.id}/v2/models/${deployment.name}/infer`;
      setResult(await api.request("POST", path, { json }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      void queryClient.invalidateQueries({ queryKey: ["metrics", deployment.id] });
    }
  };

  const predictions = (() => {
    if (!result || typeof result !== "object") return null;
    const r = result as Record<string, unknown>;
    if (Array.isArray(r.predictions)) return r.predictions;
    if (Array.isArray(r.outputs)) {
      const first = r.outputs[0] as Record<string, unknown> | undefined;
      return Array.isArray(first?.data) ? first.data : null;
    }
    return null;
  })();

  return (
    <Card title="Playground">
      <form onSubmit={send} className="space-y-3" aria-label="Prediction playground">
        <div className="flex flex-wrap items-center gap-4 text-sm">
          <span className="text-slate-600" id={`${id}-protocol`}>Protocol</span>
          <label className="flex items-center gap-1.5"><input type="radio" name={`${id}-p`} checked={protocol === "simple"} onChange={() => { setProtocol("simple"); setEdited(false); }} /> Simple JSON</label>
          <label className="flex items-center gap-1.5"><input type="radio" name={`${id}-p`} checked={protocol === "oip"} onChange={() => { setProtocol("oip"); setEdited(false); }} /> Open Inference Protocol V2</label>
        </div>
        <div>
          <label htmlFor={`${id}-body`} className="label">Request body <span className="font-normal text-slate-500">(example generated from the model&apos;s signature)</span></label>
          <textarea id={`${id}-body`} className="input h-36 font-mono text-xs" spellCheck={false} value={body}
            onChange={(e) => { setBody(e.target.value); setEdited(true); }} />
        </div>
        <div className="flex gap-2">
          <button type="submit" className="btn btn-primary" disabled={busy}>{busy && <SpinnerIcon />} Send prediction</button>
          <button type="button" className="btn" onClick={() => { setBody(example); setEdited(false); }}>Reset example</button>
        </div>
        <ErrorAlert error={error} title="The prediction failed" />
        {result != null && (
          <div aria-live="polite">
            {predictions && (
              <p className="mb-2 text-sm">Prediction: <strong data-testid="prediction-result">{predictions.map((p) => JSON.stringify(p)).join(", ")}</strong></p>
            )}
            <pre className="max-h-64 overflow-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100">{prettyJson(result)}</pre>
          </div>
        )}
      </form>
    </Card>
  );
}

function Snippets({ deployment, signature }: { deployment: Deployment; signature: Signature | null }) {
  const [tab, setTab] = useState(0);
  const simple = exampleBody(signature);
  const oip = oipBody(signature);
  const tabs = [
    { label: "curl", code: curlSimple(deployment.url, simple) },
    { label: "Python", code: pythonSimple(deployment.url, simple) },
    { label: "curl · OIP V2", code: curlOip(deployment.url, deployment.name, oip) },
    { label: "Python · OIP V2", code: pythonOip(deployment.url, deployment.name, oip) },
  ];
  const current = tabs[tab] ?? tabs[0]!;
  return (
    <Card title="Call it from your code">
      <div role="group" aria-label="Snippet language" className="mb-3 flex flex-wrap gap-1">
        {tabs.map((t, i) => (
          <button key={t.label} type="button" aria-pressed={tab === i} onClick={() => setTab(i)}
            className={`rounded-md px-3 py-1 text-sm ${tab === i ? "bg-indigo-600 text-white" : "bg-slate-100 text-slate-700 hover:bg-slate-200"}`}>
            {t.label}
          </button>
        ))}
      </div>
      <CodeBlock code={current.code} label={`${current.label} snippet`} />
      <p className="mt-2 text-xs text-slate-500">Set <code>KUBESERVE_API_KEY</code> to a key from the API keys page.</p>
    </Card>
  );
}

function Manage({ deployment }: { deployment: Deployment }) {
  const id = useId();
  const router = useRouter();
  const queryClient = useQueryClient();
  const [revision, setRevision] = useState<string>("");
  const [target, setTarget] = useState<string>("");
  const versions = useVersions(deployment.model_id, 0);
  const candidates = versions.data?.items.filter((v) => v.status === "Ready" && v.id !== deployment.version_id) ?? [];
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const others = deployment.revisions.filter((r) => r.revision !== deployment.revision);

  const refresh = () => queryClient.invalidateQueries({ queryKey: ["deployment", deployment.id] });
  const run = async (what: string, fn: () => Promise<unknown>) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
      await refresh();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <Card title="Manage">
      <div className="flex flex-wrap items-end gap-6">
        <form className="flex items-end gap-2" aria-label="Change version"
          onSubmit={(e) => {
            e.preventDefault();
            const chosen = target || candidates[0]?.id;
            if (chosen) void run("version", () => api.patch(`/deployments/${deployment.id}`, { version_id: chosen }));
          }}>
          <div>
            <label htmlFor={`${id}-version`} className="label">Serve version</label>
            <select id={`${id}-version`} className="input w-44" value={target} onChange={(e) => setTarget(e.target.value)} disabled={!candidates.length}>
              {candidates.length ? candidates.map((v) => <option key={v.id} value={v.id}>{v.version_tag}</option>) : <option value="">no other Ready version</option>}
            </select>
          </div>
          <button type="submit" className="btn" disabled={busy !== null || !candidates.length}>{busy === "version" && <SpinnerIcon />} Roll out</button>
        </form>
        <form className="flex items-end gap-2" aria-label="Roll back"
          onSubmit={(e) => {
            e.preventDefault();
            void run("rollback", () => api.post(`/deployments/${deployment.id}/rollback`, revision ? { revision: Number(revision) } : {}));
          }}>
          <div>
            <label htmlFor={`${id}-revision`} className="label">Roll back to</label>
            <select id={`${id}-revision`} className="input w-56" value={revision} onChange={(e) => setRevision(e.target.value)} disabled={!others.length}>
              <option value="">{others.length ? "the previous revision" : "no earlier revision"}</option>
              {others.map((r) => (
                <option key={r.revision} value={r.revision}>revision {r.revision}: {r.version_tag}, {r.replicas} replica(s)</option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn" disabled={busy !== null || !others.length}>{busy === "rollback" && <SpinnerIcon />} Roll back</button>
        </form>
        <div className="ml-auto">
          <ConfirmButton label="Delete deployment" title="Delete this deployment?" confirmLabel="Delete"
            body={<>The URL of <strong>{deployment.name}</strong> stops answering and its replicas are stopped. The model and its versions stay.</>}
            onConfirm={async () => {
              await api.delete(`/deployments/${deployment.id}`);
              await queryClient.invalidateQueries({ queryKey: ["deployments"] });
              router.push("/deployments/");
            }} />
        </div>
      </div>
      <div className="mt-3"><ErrorAlert error={error} /></div>
    </Card>
  );
}

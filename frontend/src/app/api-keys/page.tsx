"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { AppShell, PageHeader } from "@/components/app-shell";
import { KeyIcon, SpinnerIcon } from "@/components/icons";
import { Card, ConfirmButton, CopyButton, EmptyState, ErrorAlert, Spinner, formatTime, useDocumentTitle } from "@/components/ui";
import { api } from "@/lib/client";
import { useApiKeys, useDeployments } from "@/lib/queries";
import type { ApiKey } from "@/lib/types";

export default function ApiKeysPage() {
  return (
    <AppShell>
      <ApiKeys />
    </AppShell>
  );
}

function ApiKeys() {
  useDocumentTitle("API keys");
  const id = useId();
  const queryClient = useQueryClient();
  const keys = useApiKeys();
  const deployments = useDeployments(0);
  const [name, setName] = useState("");
  const [scope, setScope] = useState<string[]>([]);
  const [days, setDays] = useState("");
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { name: name.trim() };
      if (scope.length) body.deployment_ids = scope;
      if (days) body.expires_in_days = Number(days);
      setCreated(await api.post<ApiKey>("/auth/api-keys", body));
      setName("");
      setScope([]);
      setDays("");
      await queryClient.invalidateQueries({ queryKey: ["api-keys"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const active = keys.data?.filter((k) => !k.revoked_at) ?? [];

  return (
    <>
      <PageHeader title="API keys">Keys let programs call your deployments (and the API) without your password.</PageHeader>
      <div className="space-y-4">
        <Card title="Create a key">
          <form onSubmit={create} className="space-y-3" aria-label="Create an API key">
            <div className="flex flex-wrap items-end gap-3">
              <div>
                <label htmlFor={`${id}-name`} className="label">Name</label>
                <input id={`${id}-name`} className="input w-64" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="production backend" />
              </div>
              <div>
                <label htmlFor={`${id}-days`} className="label">Expires after <span className="font-normal text-slate-500">(days, optional)</span></label>
                <input id={`${id}-days`} type="number" min={1} max={3650} className="input w-32" value={days} onChange={(e) => setDays(e.target.value)} />
              </div>
              <button type="submit" className="btn btn-primary" disabled={busy || !name.trim()}>{busy ? <SpinnerIcon /> : <KeyIcon />} Create key</button>
            </div>
            {!!deployments.data?.items.length && (
              <fieldset>
                <legend className="label">Limit to deployments <span className="font-normal text-slate-500">(none checked: every deployment and the whole API)</span></legend>
                <div className="flex flex-wrap gap-3 text-sm">
                  {deployments.data.items.map((d) => (
                    <label key={d.id} className="flex items-center gap-1.5">
                      <input type="checkbox" checked={scope.includes(d.id)}
                        onChange={(e) => setScope((s) => (e.target.checked ? [...s, d.id] : s.filter((x) => x !== d.id)))} />
                      {d.name}
                    </label>
                  ))}
                </div>
              </fieldset>
            )}
            <ErrorAlert error={error} title="Could not create the key" />
          </form>
          {created?.key && (
            <div className="mt-4 rounded-md border border-amber-300 bg-amber-50 p-3" role="status" data-testid="new-key">
              <p className="text-sm font-medium text-amber-900">Copy the key “{created.name}” now: it is shown only once.</p>
              <div className="mt-2 flex flex-wrap items-center gap-2">
                <code className="min-w-0 flex-1 break-all rounded bg-white px-2 py-1 text-sm" data-testid="new-key-secret">{created.key}</code>
                <CopyButton text={created.key} label="Copy key" />
                <button type="button" className="btn" onClick={() => setCreated(null)}>Done</button>
              </div>
            </div>
          )}
        </Card>
        <Card title="Your keys">
          {keys.isPending && <Spinner />}
          <ErrorAlert error={keys.error} />
          {keys.data && active.length === 0 && <EmptyState title="No API keys">Create one above to call your deployments from code.</EmptyState>}
          {active.length > 0 && (
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <thead className="text-xs uppercase text-slate-500">
                  <tr><th className="py-2 pr-4">Name</th><th className="py-2 pr-4">Key</th><th className="py-2 pr-4">Scope</th><th className="py-2 pr-4">Created</th><th className="py-2 pr-4">Last used</th><th className="py-2 pr-4">Expires</th><th className="py-2"><span className="sr-only">Actions</span></th></tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {active.map((k) => (
                    <tr key={k.id} data-testid="api-key-row" data-name={k.name}>
                      <td className="py-2 pr-4 font-medium">{k.name}</td>
                      <td className="py-2 pr-4 font-mono text-xs">{k.prefix}…</td>
                      <td className="py-2 pr-4">{k.deployment_ids?.length ? `${k.deployment_ids.length} deployment(s)` : "everything"}</td>
                      <td className="py-2 pr-4 text-xs">{formatTime(k.created_at)}</td>
                      <td className="py-2 pr-4 text-xs">{k.last_used_at ? formatTime(k.last_used_at) : "never"}</td>
                      <td className="py-2 pr-4 text-xs">{k.expires_at ? formatTime(k.expires_at) : "never"}</td>
                      <td className="py-2 text-right">
                        <ConfirmButton label="Revoke" title={`Revoke ${k.name}?`} confirmLabel="Revoke key"
                          body={<>Programs using <strong>{k.name}</strong> ({k.prefix}…) get 401 from now on. This cannot be undone.</>}
                          onConfirm={async () => {
                            await api.delete(`/auth/api-keys/${k.id}`);
                            await queryClient.invalidateQueries({ queryKey: ["api-keys"] });
                          }} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      </div>
    </>
  );
}

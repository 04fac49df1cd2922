"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useId, useState, type FormEvent } from "react";
import { api } from "@/lib/client";
import type { Deployment } from "@/lib/types";
import { RocketIcon, SpinnerIcon } from "./icons";
import { ErrorAlert } from "./ui";

export function DeployForm({ versionId, defaultName }: { versionId: string; defaultName: string }) {
  const id = useId();
  const router = useRouter();
  const queryClient = useQueryClient();
  const [replicas, setReplicas] = useState(1);
  const [name, setName] = useState(defaultName);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = { version_id: versionId, replicas };
      if (name.trim()) body.name = name.trim();
      const deployment = await api.post<Deployment>("/deployments", body);
      void queryClient.invalidateQueries({ queryKey: ["deployments"] });
      router.push(`/deployments/detail/?id=${deployment.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} className="flex flex-wrap items-end gap-3" aria-label="Deploy this version">
      <div>
        <label htmlFor={`${id}-name`} className="label">Deployment name</label>
        <input id={`${id}-name`} className="input w-48" value={name} onChange={(e) => setName(e.target.value)}
          pattern="[a-z0-9]([a-z0-9-]*[a-z0-9])?" maxLength={63} aria-describedby={`${id}-name-help`} />
        <p id={`${id}-name-help`} className="mt-1 text-xs text-slate-500">lower-case letters, digits, dashes</p>
      </div>
      <div>
        <label htmlFor={`${id}-replicas`} className="label">Replicas</label>
        <input id={`${id}-replicas`} type="number" min={1} max={100} className="input w-24" value={replicas}
          onChange={(e) => setReplicas(Math.max(1, Number(e.target.value) || 1))} />
        <p className="mt-1 text-xs text-transparent" aria-hidden="true">.</p>
      </div>
      <div className="mb-5">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? <SpinnerIcon /> : <RocketIcon />} Deploy
        </button>
      </div>
      {error != null && <div className="w-full"><ErrorAlert error={error} title="Could not deploy" /></div>}
    </form>
  );
}

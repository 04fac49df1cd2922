"use client";

import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useEffect, useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { AppShell, PageHeader } from "@/components/app-shell";
import { DeployForm } from "@/components/deploy-form";
import { FileIcon, SpinnerIcon, UploadIcon, XIcon } from "@/components/icons";
import { Card, ErrorAlert, Spinner, StatusBadge, formatBytes, useDocumentTitle } from "@/components/ui";
import { VersionDetails } from "@/components/version-details";
import { api } from "@/lib/client";
import { useVersion } from "@/lib/queries";
import { FRAMEWORKS, type Framework, type Model, type Page, type Version } from "@/lib/types";

export default function UploadPage() {
  return (
    <AppShell>
      <Suspense fallback={<Spinner />}>
        <Upload />
      </Suspense>
    </AppShell>
  );
}

const SLUG = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function isRequirements(file: File): boolean {
  return /\.txt$/i.test(file.name);
}

function guessFramework(file: File): Framework | null {
  const name = file.name.toLowerCase();
  if (name.endsWith(".onnx")) return "onnx";
  if (name.endsWith(".pt") || name.endsWith(".pth")) return "pytorch";
  if (name.endsWith(".joblib") || name.endsWith(".pkl") || name.endsWith(".pickle")) return "sklearn";
  if (name.endsWith(".ubj") || name.endsWith(".xgb")) return "xgboost";
  return null;
}

function Upload() {
  useDocumentTitle("Upload");
  const id = useId();
  const params = useSearchParams();
  const queryClient = useQueryClient();
  const presetModel = params.get("model");
  const [mode, setMode] = useState<"new" | "existing">(presetModel ? "existing" : "new");
  const [modelId, setModelId] = useState(presetModel ?? "");
  const [name, setName] = useState("");
  const [framework, setFramework] = useState<Framework>("sklearn");
  const [description, setDescription] = useState("");
  const [modelFile, setModelFile] = useState<File | null>(null);
  const [requirements, setRequirements] = useState<File | null>(null);
  const [dragging, setDragging] = useState(false);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [uploaded, setUploaded] = useState<{ model: string; modelName: string; version: string } | null>(null);
  const modelInput = useRef<HTMLInputElement>(null);
  const reqInput = useRef<HTMLInputElement>(null);

  const models = useQuery({
    queryKey: ["models", "all"],
    queryFn: ({ signal }) => api.get<Page<Model>>("/models?limit=100&offset=0&sort=name", signal),
  });
  useEffect(() => {
    if (mode === "existing" && !modelId && models.data?.items[0]) setModelId(models.data.items[0].id);
  }, [mode, modelId, models.data]);

  const addFiles = (files: FileList | File[]) => {
    for (const file of Array.from(files)) {
      if (isRequirements(file)) setRequirements(file);
      else {
        setModelFile(file);
        const guess = guessFramework(file);
        if (guess) setFramework(guess);
        if (!name) setName(file.name.replace(/\.[^.]+$/, "").toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63));
      }
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer?.files?.length) addFiles(e.dataTransfer.files);
  };

  const nameError = mode === "new" && name && !SLUG.test(name) ? "Use lower-case letters, digits and dashes (no dash at either end)." : null;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!modelFile) {
      setError(new Error("Choose or drop a model file first."));
      return;
    }
    setBusy(true);
    setError(null);
    setProgress({ loaded: 0, total: modelFile.size + (requirements?.size ?? 0) });
    try {
      let target = modelId;
      let targetName = models.data?.items.find((m) => m.id === modelId)?.name ?? "model";
      if (mode === "new") {
        const created = await api.post<Model>("/models", { name, framework, description });
        target = created.id;
        targetName = created.name;
        setMode("existing");
        setModelId(created.id);
        void queryClient.invalidateQueries({ queryKey: ["models"] });
      }
      const form = new FormData();
      form.append("model", modelFile, modelFile.name);
      if (requirements) form.append("requirements", requirements, requirements.name);
      const version = await api.upload<Version>(`/models/${target}/versions`, form, (loaded, total) => setProgress({ loaded, total }));
      queryClient.setQueryData(["version", target, version.id], version);
      setUploaded({ model: target, modelName: targetName, version: version.id });
    } catch (err) {
      setError(err);
      setProgress(null);
    } finally {
      setBusy(false);
    }
  };

  const percent = progress && progress.total > 0 ? Math.round((progress.loaded / progress.total) * 100) : 0;

  return (
    <>
      <PageHeader title="Upload a model">
        A trained model file and, if it needs packages the base image lacks, a <code>requirements.txt</code>.
      </PageHeader>
      <form onSubmit={submit} className="space-y-4" aria-label="Upload a model">
        <Card title="1. Model">
          <fieldset className="space-y-3">
            <legend className="sr-only">New or existing model</legend>
            <div className="flex flex-wrap gap-4 text-sm">
              <label className="flex items-center gap-2"><input type="radio" name="mode" checked={mode === "new"} onChange={() => setMode("new")} disabled={busy} /> New model</label>
              <label className="flex items-center gap-2"><input type="radio" name="mode" checked={mode === "existing"} onChange={() => setMode("existing")} disabled={busy || !models.data?.items.length} /> New version of an existing model</label>
            </div>
            {mode === "new" ? (
              <div className="grid gap-3 sm:grid-cols-3">
                <div>
                  <label htmlFor={`${id}-name`} className="label">Name</label>
                  <input id={`${id}-name`} className="input" required value={name} onChange={(e) => setName(e.target.value)}
                    maxLength={63} aria-invalid={!!nameError} aria-describedby={`${id}-name-help`} placeholder="iris" disabled={busy} />
                  <p id={`${id}-name-help`} className={`mt-1 text-xs ${nameError ? "text-red-700" : "text-slate-500"}`}>{nameError ?? "lower-case letters, digits, dashes"}</p>
                </div>
                <div>
                  <label htmlFor={`${id}-framework`} className="label">Framework</label>
                  <select id={`${id}-framework`} className="input" value={framework} onChange={(e) => setFramework(e.target.value as Framework)} disabled={busy}>
                    {FRAMEWORKS.map((f) => <option key={f} value={f}>{f}</option>)}
                  </select>
                </div>
                <div>
                  <label htmlFor={`${id}-description`} className="label">Description <span className="font-normal text-slate-500">(optional)</span></label>
                  <input id={`${id}-description`} className="input" value={description} onChange={(e) => setDescription(e.target.value)} maxLength={500} disabled={busy} />
                </div>
              </div>
            ) : (
              <div className="max-w-sm">
                <label htmlFor={`${id}-model`} className="label">Model</label>
                <select id={`${id}-model`} className="input" value={modelId} onChange={(e) => setModelId(e.target.value)} disabled={busy}>
                  {models.data?.items.map((m) => <option key={m.id} value={m.id}>{m.name} ({m.framework})</option>)}
                </select>
              </div>
            )}
          </fieldset>
        </Card>

        <Card title="2. Files">
          <div
            data-testid="dropzone"
            onDragEnter={(e) => { e.preventDefault(); setDragging(true); }}
            onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
            className={`rounded-lg border-2 border-dashed p-6 text-center transition ${dragging ? "border-indigo-500 bg-indigo-50" : "border-slate-300 bg-slate-50"}`}
          >
            <UploadIcon className="mx-auto h-8 w-8 text-slate-400" />
            <p className="mt-2 text-sm text-slate-700">Drag and drop the model file and an optional <code>requirements.txt</code> here, or</p>
            <div className="mt-3 flex flex-wrap justify-center gap-2">
              <button type="button" className="btn" onClick={() => modelInput.current?.click()} disabled={busy}>Choose model file</button>
              <button type="button" className="btn" onClick={() => reqInput.current?.click()} disabled={busy}>Choose requirements.txt</button>
            </div>
            <input ref={modelInput} type="file" className="sr-only" aria-label="Model file" tabIndex={-1}
              onChange={(e) => e.target.files && addFiles(e.target.files)} />
            <input ref={reqInput} type="file" accept=".txt,text/plain" className="sr-only" aria-label="requirements.txt" tabIndex={-1}
              onChange={(e) => e.target.files?.[0] && setRequirements(e.target.files[0])} />
          </div>
          <ul className="mt-3 space-y-1 text-sm" aria-label="Chosen files">
            {modelFile && <FileRow file={modelFile} role="model file" onRemove={busy ? undefined : () => setModelFile(null)} />}
            {requirements && <FileRow file={requirements} role="requirements" onRemove={busy ? undefined : () => setRequirements(null)} />}
          </ul>
        </Card>

        <ErrorAlert error={error} title="Upload failed" />
        {!uploaded && (
          <div className="flex items-center gap-4">
            <button type="submit" className="btn btn-primary px-4 py-2" disabled={busy || !modelFile || !!nameError || (mode === "new" && !name)}>
              {busy ? <SpinnerIcon /> : <UploadIcon />} Upload
            </button>
            {progress && (
              <div className="flex-1">
                <div role="progressbar" aria-label="Upload progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent}
                  className="h-2 overflow-hidden rounded-full bg-slate-200">
                  <div className="h-full bg-indigo-600 transition-all" style={{ width: `${percent}%` }} />
                </div>
                <p className="mt-1 text-xs text-slate-500">{formatBytes(progress.loaded)} of {formatBytes(progress.total)} · {percent}%</p>
              </div>
            )}
          </div>
        )}
      </form>
      {uploaded && <BuildProgress {...uploaded} onAnother={() => { setUploaded(null); setProgress(null); setModelFile(null); setRequirements(null); }} />}
    </>
  );
}

function FileRow({ file, role, onRemove }: { file: File; role: string; onRemove?: () => void }) {
  return (
    <li className="flex items-center gap-2 rounded-md bg-slate-50 px-3 py-2" data-testid={`file-${role === "model file" ? "model" : "requirements"}`}>
      <FileIcon className="text-slate-500" />
      <span className="font-medium">{file.name}</span>
      <span className="text-slate-500">{role} · {formatBytes(file.size)}</span>
      {onRemove && (
        <button type="button" className="ml-auto rounded p-1 text-slate-500 hover:bg-slate-200" onClick={onRemove} aria-label={`Remove ${file.name}`}>
          <XIcon />
        </button>
      )}
    </li>
  );
}

function BuildProgress({ model, modelName, version, onAnother }: { model: string; modelName: string; version: string; onAnother(): void }) {
  const v = useVersion(model, version);
  return (
    <div className="mt-6">
      <Card title={<span className="flex items-center gap-2">Build of {modelName} {v.data && <><span className="font-mono">{v.data.version_tag}</span><StatusBadge status={v.data.status} /></>}</span>}
        actions={<span className="flex gap-2"><Link className="btn" href={`/models/detail/?id=${model}`}>Open model</Link><button type="button" className="btn" onClick={onAnother}>Upload another</button></span>}>
        {v.isPending && <Spinner />}
        <ErrorAlert error={v.error} />
        {v.data && (
          <div data-testid="build-progress" data-status={v.data.status} aria-live="polite">
            <VersionDetails version={v.data} />
            {v.data.status === "Ready" && (
              <div className="mt-4 border-t border-slate-100 pt-4">
                <DeployForm versionId={v.data.id} defaultName={modelName} />
              </div>
            )}
          </div>
        )}
      </Card>
    </div>
  );
}

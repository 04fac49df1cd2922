"use client";

import { useEffect, useRef, useState, type ReactNode } from "react";
import { describeError } from "@/lib/api";
import { AlertIcon, CheckIcon, CopyIcon, SpinnerIcon } from "./icons";

export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <div role="alert" className="flex gap-2 rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-800">
      <AlertIcon className="mt-0.5 shrink-0" />
      <div>
        {title && <p className="font-medium">{title}</p>}
        <p className="break-words">{describeError(error)}</p>
      </div>
    </div>
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <p role="status" className="flex items-center gap-2 text-sm text-slate-500">
      <SpinnerIcon /> {label}
    </p>
  );
}

const BADGE: Record<string, string> = {
  Uploading: "bg-sky-100 text-sky-800 ring-sky-300",
  Building: "bg-amber-100 text-amber-900 ring-amber-300",
  Ready: "bg-emerald-100 text-emerald-800 ring-emerald-300",
  Running: "bg-emerald-100 text-emerald-800 ring-emerald-300",
  Failed: "bg-red-100 text-red-800 ring-red-300",
  Pending: "bg-amber-100 text-amber-900 ring-amber-300",
  Deploying: "bg-amber-100 text-amber-900 ring-amber-300",
  Degraded: "bg-orange-100 text-orange-900 ring-orange-300",
};
const TRANSITIONAL = new Set(["Uploading", "Building", "Pending", "Deploying", "Scaling", "Deleting", "Updating"]);

export function isTransitional(status: string | undefined | null): boolean {
  return !!status && TRANSITIONAL.has(status);
}

export function StatusBadge({ status }: { status: string }) {
  const style = BADGE[status] ?? "bg-slate-100 text-slate-700 ring-slate-300";
  return (
    <span data-testid="status-badge" data-status={status}
      className={`inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${style}`}>
      {isTransitional(status) && <SpinnerIcon className="h-3 w-3" />}
      {status}
    </span>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className="rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center">
      <p className="font-medium text-slate-800">{title}</p>
      {children && <div className="mt-1 text-sm text-slate-500">{children}</div>}
      {action && <div className="mt-4">{action}</div>}
    </div>
  );
}

export function Pagination({ offset, limit, total, onChange, label }: {
  offset: number; limit: number; total: number; onChange(offset: number): void; label: string;
}) {
  if (total <= limit && offset === 0) return null;
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return (
    <nav aria-label={`${label} pages`} className="mt-4 flex items-center justify-between text-sm text-slate-600">
      <span>{first}–{last} of {total}</span>
      <span className="flex gap-2">
        <button type="button" className="btn" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>Previous</button>
        <button type="button" className="btn" disabled={offset + limit >= total} onClick={() => onChange(offset + limit)}>Next</button>
      </span>
    </nav>
  );
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Older browsers / insecure origins: select-and-copy through a hidden textarea.
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" className="btn" onClick={copy} aria-label={`${label} to clipboard`}>
      {copied ? <CheckIcon /> : <CopyIcon />} <span aria-live="polite">{copied ? "Copied" : label}</span>
    </button>
  );
}

export function CodeBlock({ code, label }: { code: string; label: string }) {
  return (
    <div className="relative">
      <pre aria-label={label} className="overflow-x-auto rounded-md bg-slate-900 p-3 pr-24 text-xs leading-relaxed text-slate-100"><code>{code}</code></pre>
      <div className="absolute right-2 top-2"><CopyButton text={code} /></div>
    </div>
  );
}

/** A modal confirmation on the native <dialog> (focus trap and Escape come with it). */
export function ConfirmButton({ label, title, body, confirmLabel, onConfirm, danger = true }: {
  label: ReactNode; title: string; body: ReactNode; confirmLabel: string; onConfirm(): Promise<unknown> | void; danger?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const open = () => {
    setError(null);
    ref.current?.showModal();
  };
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      ref.current?.close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className={danger ? "btn btn-danger" : "btn"} onClick={open}>{label}</button>
      <dialog ref={ref} aria-labelledby={`${title}-title`} className="m-auto w-[min(28rem,92vw)] rounded-lg p-0 text-left shadow-xl backdrop:bg-slate-900/40">
        <div className="space-y-3 p-5">
          <h2 id={`${title}-title`} className="text-lg font-semibold">{title}</h2>
          <div className="text-sm text-slate-600">{body}</div>
          <ErrorAlert error={error} />
          <div className="flex justify-end gap-2 pt-2">
            <button type="button" className="btn" onClick={() => ref.current?.close()} autoFocus>Cancel</button>
            <button type="button" className={danger ? "btn btn-danger-solid" : "btn btn-primary"} onClick={confirm} disabled={busy}>
              {busy && <SpinnerIcon />} {confirmLabel}
            </button>
          </div>
        </div>
      </dialog>
    </>
  );
}

export function Card({ title, children, actions, id }: { title?: ReactNode; children: ReactNode; actions?: ReactNode; id?: string }) {
  return (
    <section aria-labelledby={id} className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5">
      {(title || actions) && (
        <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
          {title && <h2 id={id} className="text-base font-semibold text-slate-900">{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function useDocumentTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · KubeServe`;
  }, [title]);
}

"use client";

// The deployment page's logs panel: `GET /deployments/{id}/logs` as server-sent events read with
// fetch (EventSource cannot send the Authorization header; the token stays in memory and out of
// URLs). Replica selection and a follow toggle; the stream is aborted when either changes and
// when the page is left (the component unmounts).

import { useEffect, useId, useRef, useState } from "react";
import { api } from "@/lib/client";
import { describeError, errorFromBody } from "@/lib/api";
import { logsQuery, parseLogEvent, readSse, type LogLine } from "@/lib/sse";
import type { Deployment } from "@/lib/types";

const TAIL = 200;
const KEEP = 2000;

type StreamState = "connecting" | "streaming" | "ended" | "failed";

export function LogsPanel({ deployment }: { deployment: Deployment }) {
  const id = useId();
  const [replica, setReplica] = useState<number | null>(null);
  const [follow, setFollow] = useState(true);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const box = useRef<HTMLPreElement>(null);
  const stick = useRef(true);

  // Replica indices of the revision being served (else the newest), for the selector.
  const shown = deployment.serving_revision ?? deployment.revision;
  const indices = [...new Set((deployment.replica_details ?? []).filter((r) => r.revision === shown).map((r) => r.index))].sort((a, b) => a - b);
  const choices = indices.length ? indices : Array.from({ length: deployment.replicas.desired }, (_, i) => i);

  useEffect(() => {
    const controller = new AbortController();
    setLines([]);
    setError(null);
    setState("connecting");
    const path = `/deployments/${deployment.id}/logs?${logsQuery({ replica, follow, tail: TAIL })}`;
    (async () => {
      try {
        const response = await api.stream(path, { signal: controller.signal });
        if (!response.body) throw new Error("This browser cannot read a streamed response.");
        setState("streaming");
        let pending: LogLine[] = [];
        let timer: ReturnType<typeof setTimeout> | null = null;
        const flush = () => {
          timer = null;
          const batch = pending;
          pending = [];
          setLines((prev) => (prev.length + batch.length > KEEP ? [...prev, ...batch].slice(-KEEP) : [...prev, ...batch]));
        };
        await readSse(response.body, (ev) => {
          const line = parseLogEvent(ev);
          if (line) {
            pending.push(line);
            // One render per burst of lines, not one per line.
            if (!timer) timer = setTimeout(flush, 50);
          } else if (ev.event === "error") {
            let body: unknown = null;
            try {
              body = JSON.parse(ev.data);
            } catch {
              body = ev.data;
            }
            setError(errorFromBody(500, body).message);
          }
        }, controller.signal);
        if (timer) clearTimeout(timer);
        flush();
        if (!controller.signal.aborted) setState("ended");
      } catch (err) {
        if (controller.signal.aborted) return;
        setError(describeError(err));
        setState("failed");
      }
    })();
    return () => controller.abort();
  }, [deployment.id, replica, follow, attempt]);

  // Keep the newest line in view unless the reader scrolled up.
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  const many = replica === null && choices.length > 1;
  const status = {
    connecting: "Connecting…",
    streaming: follow ? "Following new lines" : "Reading…",
    ended: follow ? "The stream ended" : `The last ${TAIL} lines per replica`,
    failed: "Could not read the logs",
  }[state];

  return (
    <div className="space-y-2" aria-label="Replica logs">
      <div className="flex flex-wrap items-end gap-4 text-sm">
        <div>
          <label htmlFor={`${id}-replica`} className="label">Replica</label>
          <select id={`${id}-replica`} className="input w-40" value={replica === null ? "" : String(replica)}
            onChange={(e) => setReplica(e.target.value === "" ? null : Number(e.target.value))}>
            <option value="">all replicas</option>
            {choices.map((i) => <option key={i} value={i}>replica {i}</option>)}
          </select>
        </div>
        <label className="flex items-center gap-1.5 pb-2">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
        <button type="button" className="btn mb-0.5" onClick={() => setAttempt((n) => n + 1)}>Reload</button>
        <span className="pb-2 text-xs text-slate-500" data-testid="logs-state" data-state={state} role="status">{status}</span>
      </div>
      {error && <p role="alert" className="rounded-md border border-red-200 bg-red-50 p-2 text-sm text-red-800">{error}</p>}
      <pre ref={box} data-testid="logs" tabIndex={0} aria-label="Log lines"
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
        className="h-72 overflow-auto whitespace-pre-wrap break-words rounded-md bg-slate-900 p-3 font-mono text-xs text-slate-100">
        {lines.length === 0
          ? <span className="text-slate-400">{state === "connecting" ? "" : "No log lines yet."}</span>
          : lines.map((l, i) => (
            <span key={i} className="block" data-replica={l.replica}>
              {many && <span className="select-none text-indigo-300">[replica {l.replica}] </span>}
              {l.line}
            </span>
          ))}
      </pre>
    </div>
  );
}

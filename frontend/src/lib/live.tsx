"use client";

// Live updates: the gateway's server-sent events (the caller's own lifecycle events) invalidate
// the matching React Query caches. While the stream is down, queries poll instead.

import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { api } from "./client";
import { useSession } from "./session";
import type { LiveEvent } from "./types";

interface Live {
  connected: boolean;
  recent: LiveEvent[];
}

const LiveContext = createContext<Live>({ connected: false, recent: [] });

export const POLL_MS = 4000;

export function invalidateFor(queryClient: QueryClient, event: LiveEvent): void {
  const data = event.data;
  const modelId = typeof data.model_id === "string" ? data.model_id : null;
  const deploymentId = typeof data.deployment_id === "string" ? data.deployment_id : null;
  if (event.type.startsWith("io.kubeserve.model.") || event.type.startsWith("io.kubeserve.version.")) {
    void queryClient.invalidateQueries({ queryKey: ["models"] });
    if (modelId) {
      void queryClient.invalidateQueries({ queryKey: ["model", modelId] });
      void queryClient.invalidateQueries({ queryKey: ["versions", modelId] });
      void queryClient.invalidateQueries({ queryKey: ["version", modelId] });
    }
  }
  if (event.type.startsWith("io.kubeserve.deployment.")) {
    void queryClient.invalidateQueries({ queryKey: ["deployments"] });
    void queryClient.invalidateQueries({ queryKey: ["usage"] });
    if (deploymentId) void queryClient.invalidateQueries({ queryKey: ["deployment", deploymentId] });
  }
}

export function LiveProvider({ children }: { children: ReactNode }) {
  const { status } = useSession();
  const queryClient = useQueryClient();
  const [connected, setConnected] = useState(false);
  const [recent, setRecent] = useState<LiveEvent[]>([]);

  useEffect(() => {
    if (status !== "signed-in" || typeof EventSource === "undefined") return;
    let source: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;
    let backoff = 1000;

    const reconnect = (delay: number) => {
      source?.close();
      source = null;
      setConnected(false);
      if (stopped) return;
      timer = setTimeout(connect, delay);
    };

    const connect = async () => {
      let ticket: string;
      try {
        ticket = (await api.post<{ ticket: string }>("/events/ticket")).ticket;
      } catch {
        backoff = Math.min(backoff * 2, 30000);
        reconnect(backoff);
        return;
      }
      if (stopped) return;
      const es = new EventSource(api.url(`/events?ticket=${encodeURIComponent(ticket)}`));
      source = es;
      es.addEventListener("ready", () => {
        backoff = 1000;
        setConnected(true);
        // Whatever happened while we were not listening: fetch it once.
        void queryClient.invalidateQueries();
      });
      es.onmessage = (message) => {
        try {
          const event = JSON.parse(message.data as string) as LiveEvent;
          setRecent((prev) => [event, ...prev].slice(0, 50));
          invalidateFor(queryClient, event);
        } catch {
          // a malformed event is ignored; the next refetch corrects the view
        }
      };
      // The gateway ends a stream after a while (re-authentication) or when we were too slow.
      es.addEventListener("expired", () => reconnect(0));
      es.addEventListener("overflow", () => reconnect(0));
      // A ticket is single-use, so EventSource's own retry cannot work: take a new one.
      es.onerror = () => {
        backoff = Math.min(backoff * 2, 30000);
        reconnect(backoff);
      };
    };

    void connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      source?.close();
      setConnected(false);
    };
  }, [status, queryClient]);

  return <LiveContext.Provider value={{ connected, recent }}>{children}</LiveContext.Provider>;
}

export function useLive(): Live {
  return useContext(LiveContext);
}

/** refetchInterval for a query: poll while the live stream is down; while it is up, a slow
 * safety net only for things still in transition. */
export function usePollInterval(transitional = false): number | false {
  const { connected } = useLive();
  if (!connected) return POLL_MS;
  return transitional ? 15000 : false;
}

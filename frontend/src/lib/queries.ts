"use client";

import { useQuery } from "@tanstack/react-query";
import { isTransitional } from "@/components/ui";
import { ApiError } from "./api";
import { api } from "./client";
import { usePollInterval } from "./live";
import type { ApiKey, ClientConfig, ColdStartRead, Deployment, DeploymentMetrics, Model, Page, Usage, Version } from "./types";

export const PAGE_SIZE = 10;

export function useModels(offset: number) {
  const poll = usePollInterval(false);
  return useQuery({
    queryKey: ["models", offset],
    queryFn: ({ signal }) => api.get<Page<Model>>(`/models?limit=${PAGE_SIZE}&offset=${offset}`, signal),
    refetchInterval: (q) => (q.state.data?.items.some((m) => isTransitional(m.latest_version?.status)) ? (poll || 15000) : poll),
  });
}

export function useModel(id: string | null) {
  return useQuery({
    queryKey: ["model", id],
    queryFn: ({ signal }) => api.get<Model>(`/models/${id}`, signal),
    enabled: !!id,
  });
}

export function useVersions(modelId: string | null, offset = 0) {
  const poll = usePollInterval(false);
  const slow = usePollInterval(true);
  return useQuery({
    queryKey: ["versions", modelId, offset],
    queryFn: ({ signal }) => api.get<Page<Version>>(`/models/${modelId}/versions?limit=${PAGE_SIZE}&offset=${offset}`, signal),
    enabled: !!modelId,
    refetchInterval: (q) => (q.state.data?.items.some((v) => isTransitional(v.status)) ? slow : poll),
  });
}

export function useVersion(modelId: string | null, versionId: string | null) {
  const poll = usePollInterval(false);
  const slow = usePollInterval(true);
  return useQuery({
    queryKey: ["version", modelId, versionId],
    queryFn: ({ signal }) => api.get<Version>(`/models/${modelId}/versions/${versionId}`, signal),
    enabled: !!modelId && !!versionId,
    refetchInterval: (q) => (isTransitional(q.state.data?.status) ? slow : poll),
  });
}

export function useDeployments(offset: number) {
  const poll = usePollInterval(false);
  return useQuery({
    queryKey: ["deployments", offset],
    queryFn: ({ signal }) => api.get<Page<Deployment>>(`/deployments?limit=${PAGE_SIZE}&offset=${offset}`, signal),
    refetchInterval: poll,
  });
}

export function useDeployment(id: string | null) {
  const poll = usePollInterval(false);
  const slow = usePollInterval(true);
  return useQuery({
    queryKey: ["deployment", id],
    queryFn: ({ signal }) => api.get<Deployment>(`/deployments/${id}`, signal),
    enabled: !!id,
    refetchInterval: (q) => (isTransitional(q.state.data?.status) ? slow : poll),
  });
}

export function useApiKeys() {
  return useQuery({ queryKey: ["api-keys"], queryFn: ({ signal }) => api.get<ApiKey[]>("/auth/api-keys", signal) });
}

export function useClientConfig() {
  return useQuery({
    queryKey: ["config"],
    queryFn: ({ signal }) => api.request<ClientConfig>("GET", "/config", { auth: false, signal }),
    staleTime: Infinity,
  });
}

export function useDeploymentMetrics(id: string | null, enabled: boolean) {
  return useQuery({
    queryKey: ["metrics", id],
    queryFn: ({ signal }) => api.get<DeploymentMetrics>(`/metrics/deployments/${id}?minutes=15`, signal),
    enabled: !!id && enabled,
    refetchInterval: 10000,
  });
}

/** `GET /usage`: the caller's replicas, CPU and memory against the quota. Refreshed whenever a
 * deployment event arrives (see live.tsx) and polled while the stream is down. */
export function useUsage() {
  const poll = usePollInterval(false);
  return useQuery({
    queryKey: ["usage"],
    queryFn: ({ signal }) => api.get<Usage>("/usage", signal),
    refetchInterval: poll || 15000,
  });
}

/** The deployer's predicted cold start of a version per backend; null when the platform has
 * no such route yet (404), so the page falls back to the builder's estimate. */
export function useColdStart(versionId: string | null, enabled = true) {
  return useQuery({
    queryKey: ["cold-start", versionId],
    queryFn: async ({ signal }) => {
      try {
        return await api.get<ColdStartRead>(`/cold-start?version_id=${encodeURIComponent(versionId ?? "")}`, signal);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    },
    enabled: !!versionId && enabled,
    staleTime: 30000,
  });
}

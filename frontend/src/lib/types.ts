// Shapes of the public API's JSON (see /api/v1/openapi.json).

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface User {
  id: string;
  email: string;
  role: string;
}

export type Framework = "sklearn" | "xgboost" | "lightgbm" | "onnx" | "pytorch" | "custom";
export const FRAMEWORKS: Framework[] = ["sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "custom"];

export type VersionStatus = "Uploading" | "Building" | "Ready" | "Failed";

export interface VersionSummary {
  id: string;
  version_tag: string;
  status: VersionStatus;
  created_at: string;
}

export interface Model {
  id: string;
  name: string;
  framework: Framework;
  description: string | null;
  created_at: string;
  updated_at: string;
  latest_version: VersionSummary | null;
}

export interface Signature {
  model_type?: string;
  n_features_in?: number | null;
  feature_names_in?: string[] | null;
  classes?: unknown[] | null;
  has_predict_proba?: boolean;
  outputs?: string[];
  smoke?: { input?: { kind?: string; shape?: number[] } };
  [key: string]: unknown;
}

export interface DependencyPlan {
  satisfied?: string[];
  missing?: string[];
  conflicting?: string[];
  to_install?: string[];
  requirements?: string[];
  wheels?: unknown[];
  cold_start?: Record<string, number>;
  [key: string]: unknown;
}

export interface Version {
  id: string;
  model_id: string;
  version_tag: string;
  number: number;
  status: VersionStatus;
  artifact: { filename: string; size: number; sha256: string } | null;
  requirements: string;
  failure_stage: string | null;
  failure_reason: string | null;
  signature: Signature | null;
  dependency_plan: DependencyPlan | null;
  predicted_cold_start_ms: number | null;
  created_at: string;
  updated_at: string;
  built_at: string | null;
}

export interface DeploymentEvent {
  at: string;
  kind: string;
  message: string;
}

export interface Revision {
  revision: number;
  version_id: string;
  version_tag: string;
  replicas: number;
  reason: string;
  created_at: string;
}

export interface Deployment {
  id: string;
  name: string;
  owner_id: string;
  model_id: string;
  version_id: string;
  version_tag: string | null;
  status: string;
  revision: number;
  serving_revision: number | null;
  replicas: { desired: number; ready: number };
  url: string;
  failure_reason: string | null;
  cold_start: Record<string, number> | null;
  created_at: string;
  updated_at: string;
  events: DeploymentEvent[];
  revisions: Revision[];
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  deployment_ids: string[] | null;
  expires_at: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  key?: string;
}

export interface ClientConfig {
  grafana: { url: string; dashboard_uid: string; panels: number[] } | null;
}

export interface MetricsPoint {
  t: number;
  requests: number;
  errors: number;
  rps: number;
  error_rate: number;
  p95_ms: number | null;
}

export interface DeploymentMetrics {
  bucket_seconds: number;
  window_seconds: number;
  points: MetricsPoint[];
  totals: { requests: number; errors: number; error_rate: number; p95_ms: number | null };
  scope: string;
}

export interface LiveEvent {
  id: string;
  type: string;
  subject: string | null;
  time: string;
  data: Record<string, unknown>;
}

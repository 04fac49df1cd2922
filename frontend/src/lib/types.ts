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
  /** The builder's estimate (ms): backend-blind, never calibrated. The deployer's calibrated
   * per-backend prediction is `GET /cold-start?version_id=` (a `ColdStartRead`). */
  predicted_cold_start_ms: number | null;
  created_at: string;
  updated_at: string;
  built_at: string | null;
}

/** `local-warm-pool`, `local-process` or `kubernetes-pod`. */
export type BackendName = string;

/** One backend's predicted cold start, from the phases the deployer measured before. */
export interface ColdStartPrediction {
  backend: BackendName;
  total_ms: number;
  phases_ms: Record<string, number>;
  calibrated: boolean;
  observations: number;
  /** "calibrated" or "estimate, not yet calibrated". */
  label: string;
}

/** A replica's measured cold start: `total_ms` from the start request to the first good
 * health check, with the phases its backend measures apart. */
export interface ReplicaColdStart {
  backend: BackendName;
  phases_ms: Record<string, number>;
  total_ms: number;
}

/** `GET /api/v1/cold-start?version_id=`. */
export interface ColdStartRead {
  version_id: string;
  predicted_cold_start_ms: Record<BackendName, number>;
  predictions: ColdStartPrediction[];
}

export interface AutoscalingSettings {
  min_replicas: number;
  max_replicas: number;
  target_concurrency: number;
  scale_to_zero_after_s: number | null;
}

export interface ReplicaDetail {
  revision: number;
  index: number;
  status: string;
  restarts: number;
  last_error: string | null;
  started_at: string | null;
  ready_at: string | null;
  /** Absent until the deployer reports it (older API). */
  backend?: BackendName | null;
  /** Its measured cold start, once it was ready. */
  cold_start?: ReplicaColdStart | null;
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
  /** Null: a fixed replica count. */
  autoscaling?: AutoscalingSettings | null;
  url: string;
  failure_reason: string | null;
  cold_start: Record<string, number> | null;
  replica_details?: ReplicaDetail[];
  /** The next replica's predicted cold start on its backend (absent on an older API). */
  predicted_cold_start?: ColdStartPrediction | null;
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

export interface Resources {
  replicas: number;
  cpu: number;
  memory_mib: number;
}

export interface UsageNeed {
  needs: Resources;
  fits: boolean;
  message: string;
}

export interface DeploymentUsage {
  id: string;
  name: string;
  status: string;
  replicas: { desired: number; ready: number };
  reserved: Resources;
  running: Resources;
  autoscaling_max_replicas: number | null;
  can_add_replicas: number;
}

/** `GET /api/v1/usage`. */
export interface Usage {
  quota: Resources;
  in_use: Resources;
  running: Resources;
  available: Resources;
  more_replicas_fit: number;
  new_deployment: UsageNeed;
  scale_up: UsageNeed;
  deployments: DeploymentUsage[];
}

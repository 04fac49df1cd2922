import { describe, expect, it } from "vitest";
import { formatMs, measured, prediction, predictedPhase, replicaColdStarts, versionPredictions, versus } from "./cold-start";
import type { ColdStartRead } from "./types";

const builderVersion = {
  predicted_cold_start_ms: 4700,
  dependency_plan: { cold_start: { base_ms: 4000, model_load_ms: 700, install_ms: 0, wheels: 0, wheel_bytes: 0, total_ms: 4700 } },
};

const read: ColdStartRead = {
  version_id: "v",
  predicted_cold_start_ms: { "local-warm-pool": 150, "kubernetes-pod": 5200 },
  predictions: [
    { backend: "local-warm-pool", total_ms: 150, phases_ms: { start: 50, dependencies: 0, model_load: 50, first_ready: 50 }, calibrated: true, observations: 5, label: "calibrated" },
    { backend: "kubernetes-pod", total_ms: 5200, phases_ms: { start: 5000, model_load: 200 }, calibrated: false, observations: 0, label: "estimate, not yet calibrated" },
  ],
};

describe("predicted cold start", () => {
  it("falls back to the builder's single, uncalibrated estimate while the route is absent", () => {
    const [p, ...rest] = versionPredictions(builderVersion, null);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ backend: null, totalMs: 4700, calibrated: false, source: "builder", label: "estimate, not yet calibrated" });
    expect(p!.phases.map((x) => [x.key, x.ms])).toEqual([["base", 4000], ["install", 0], ["model_load", 700]]);
  });

  it("shows the deployer's prediction for the backend in use, all of them when unknown", () => {
    expect(versionPredictions(builderVersion, read, "kubernetes-pod").map((p) => [p.backend, p.totalMs, p.calibrated]))
      .toEqual([["kubernetes-pod", 5200, false]]);
    const all = versionPredictions(builderVersion, read, null);
    expect(all.map((p) => p.backend)).toEqual(["local-warm-pool", "kubernetes-pod"]);
    expect(all[0]!.phases.map((x) => x.key)).toEqual(["start", "dependencies", "model_load", "first_ready"]);
    expect(all[1]!.label).toBe("estimate, not yet calibrated");
  });

  it("has nothing to say for a version without a prediction, nor for an absent deployment field", () => {
    expect(versionPredictions({ predicted_cold_start_ms: null, dependency_plan: null }, null)).toEqual([]);
    expect(prediction(undefined)).toBeNull();
    expect(prediction(null)).toBeNull();
  });
});

describe("measured cold start", () => {
  it("lists only the replicas that report one, phases in order, beside the predicted phase", () => {
    const rows = replicaColdStarts({
      replica_details: [
        { revision: 1, index: 0, status: "ready", restarts: 0, last_error: null, started_at: null, ready_at: null, backend: "local-warm-pool",
          cold_start: { backend: "local-warm-pool", phases_ms: { first_ready: 20, start: 40, model_load: 30 }, total_ms: 95 } },
        { revision: 1, index: 1, status: "starting", restarts: 0, last_error: null, started_at: null, ready_at: null, backend: "local-warm-pool", cold_start: null },
        { revision: 1, index: 2, status: "ready", restarts: 0, last_error: null, started_at: null, ready_at: null },
      ],
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.measured).toMatchObject({ totalMs: 95, backend: "local-warm-pool", backendLabel: "local, warm pool" });
    expect(rows[0]!.measured.phases.map((p) => p.key)).toEqual(["start", "model_load", "first_ready"]);
    expect(predictedPhase(prediction(read.predictions[0]), "model_load")).toBe(50);
    expect(predictedPhase(prediction(read.predictions[1]), "first_ready")).toBeNull();
    expect(measured(undefined)).toBeNull();
  });

  it("compares a measurement with its prediction", () => {
    expect(versus(123, 4700)).toBe("38.2× faster than predicted");
    expect(versus(1300, 1000)).toBe("30 % over the prediction");
    expect(versus(800, 1000)).toBe("20 % under the prediction");
    expect(versus(100, null)).toBeNull();
    expect(formatMs(123.4)).toBe("123 ms");
    expect(formatMs(4700)).toBe("4.70 s");
  });
});

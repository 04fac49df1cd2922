import { describe, expect, it } from "vitest";
import { formatMs, measured, predictionFor, predictions, replicaColdStarts, versus } from "./cold-start";

const builderVersion = {
  predicted_cold_start_ms: 4700,
  dependency_plan: { cold_start: { base_ms: 4000, model_load_ms: 700, install_ms: 0, wheels: 0, wheel_bytes: 0, total_ms: 4700 } },
};

describe("predicted cold start", () => {
  it("falls back to the builder's single, uncalibrated estimate", () => {
    const [p, ...rest] = predictions(builderVersion);
    expect(rest).toEqual([]);
    expect(p).toMatchObject({ backend: null, totalMs: 4700, calibrated: false, source: "builder" });
    expect(p!.phases.map((x) => [x.key, x.ms])).toEqual([["base", 4000], ["install", 0], ["model_load", 700]]);
  });

  it("prefers the deployer's per-backend predictions when the API has them", () => {
    const version = {
      ...builderVersion,
      predicted_cold_start: {
        "local-warm-pool": { total_ms: 150, phases_ms: { start: 50, dependencies: 0, model_load: 50, first_ready: 50 }, calibrated: true, observations: 5 },
        "kubernetes-pod": { total_ms: 5200, calibrated: false, label: "estimate, not yet calibrated" },
      },
    };
    const list = predictions(version);
    expect(list.map((p) => [p.backend, p.totalMs, p.calibrated])).toEqual([["local-warm-pool", 150, true], ["kubernetes-pod", 5200, false]]);
    expect(list[0]!.phases).toHaveLength(4);
    expect(predictionFor(list, "kubernetes-pod")?.totalMs).toBe(5200);
    expect(predictionFor(list, "local-process")).toBeNull();
  });

  it("accepts a plain map of backend -> ms in predicted_cold_start_ms", () => {
    const list = predictions({ predicted_cold_start_ms: { "local-process": 1800 }, dependency_plan: null });
    expect(list).toMatchObject([{ backend: "local-process", totalMs: 1800, calibrated: null, source: "deployer" }]);
  });

  it("has nothing to say for a version without a prediction", () => {
    expect(predictions({ predicted_cold_start_ms: null, dependency_plan: null })).toEqual([]);
  });
});

describe("measured cold start", () => {
  it("reads today's rollout timings as fetch, start and first health, with the load inside", () => {
    const m = measured({ fetch_ms: 3.1, cache_hit: 1, spawn_ms: 20, first_health_ms: 100, model_load_ms: 40, total_ms: 123.1, request_to_ready_ms: 900 })!;
    expect(m.totalMs).toBe(123.1);
    expect(m.phases.map((p) => p.key)).toEqual(["fetch", "spawn", "first_health"]);
    expect(m.details.map((p) => p.key).sort()).toEqual(["model_load", "request_to_ready"]);
  });

  it("reads the estimator's phases per replica, with the replica's backend", () => {
    const rows = replicaColdStarts({
      backend: null,
      replica_details: [
        { revision: 1, index: 0, status: "ready", restarts: 0, last_error: null, started_at: null, ready_at: null, launcher: "pool", cold_start: { start: 40, model_load: 30, first_ready: 20 } },
        { revision: 1, index: 1, status: "starting", restarts: 0, last_error: null, started_at: null, ready_at: null },
      ],
    });
    expect(rows[0]!.measured).toMatchObject({ totalMs: 90, backend: "local-warm-pool" });
    expect(rows[1]!.measured).toBeNull();
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

import { describe, expect, it } from "vitest";
import { describeScaling, draftOf, patchBody } from "./scaling";
import type { Deployment } from "./types";

const fixed = { replicas: { desired: 2, ready: 2 }, autoscaling: null } as unknown as Deployment;
const auto = {
  replicas: { desired: 1, ready: 1 },
  autoscaling: { min_replicas: 0, max_replicas: 3, target_concurrency: 2, scale_to_zero_after_s: 10 },
} as unknown as Deployment;

describe("scaling form", () => {
  it("describes a fixed count and the autoscaler's settings", () => {
    expect(describeScaling(fixed)).toBe("fixed 2 replicas");
    expect(describeScaling(auto)).toBe("autoscaling 0–3 replicas, target 2 in flight per replica, to zero after 10 s idle");
  });

  it("sends a fixed count as {replicas} and autoscaling as {autoscaling: {...}}", () => {
    expect(patchBody(draftOf(fixed))).toEqual({ replicas: 2 });
    expect(patchBody(draftOf(auto))).toEqual({ autoscaling: { min_replicas: 0, max_replicas: 3, target_concurrency: 2, scale_to_zero_after_s: 10 } });
    // Starting autoscaling from a fixed deployment: the defaults, no scale-to-zero delay unless min is 0.
    expect(patchBody({ ...draftOf(fixed), mode: "auto", zeroAfter: "30" })).toEqual({ autoscaling: { min_replicas: 1, max_replicas: 3, target_concurrency: 2 } });
  });

  it("leaves validation to the API: min > max is sent as typed, an empty field is left out", () => {
    expect(patchBody({ ...draftOf(auto), min: "3", max: "1", target: "" })).toEqual({ autoscaling: { min_replicas: 3, max_replicas: 1 } });
    expect(patchBody({ ...draftOf(fixed), replicas: "" })).toEqual({ replicas: null });
  });
});

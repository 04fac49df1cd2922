import { describe, expect, it } from "vitest";
import { replicaSeries, replicasFromEvent, stepPath } from "./replica-series";
import type { DeploymentEvent } from "./types";

const ev = (at: string, kind: string, message: string): DeploymentEvent => ({ at, kind, message });

describe("replicas over time from the activity", () => {
  it("reads autoscaler decisions, manual scales, new revisions and autoscaling off", () => {
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "autoscaled", "scaled 1 -> 3: 7.5 in flight, target 2"))).toEqual({ from: 1, to: 3 });
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "autoscaled", "scaled 3 → 0: idle for 10s"))).toEqual({ from: 3, to: 0 });
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "scale_requested", "scale from 1 to 2 replicas"))).toEqual({ from: 1, to: 2 });
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "deploy_requested", "revision 2: update, version v3, 2 replica(s)"))).toEqual({ from: null, to: 2 });
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "autoscaling", "autoscaling off: a fixed 4 replica(s)"))).toEqual({ from: null, to: 4 });
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "running", "revision 1 running with 1 replica(s)"))).toBeNull();
    expect(replicasFromEvent(ev("2026-12-03T08:00:00Z", "replica_ready", "replica 0 ready"))).toBeNull();
  });

  it("orders the steps by time, starts from the first known count and ends at the current one", () => {
    // The API lists the newest entry last; out of order on purpose.
    const events = [
      ev("2026-12-03T08:02:00Z", "autoscaled", "scaled 3 -> 1: 0.0 in flight, target 2"),
      ev("2026-12-03T08:00:00Z", "autoscaled", "scaled 1 -> 3: 7.5 in flight, target 2 (panic)"),
      ev("2026-12-03T08:00:30Z", "running", "revision 1 running with 3 replica(s)"),
    ];
    const now = Date.parse("2026-12-03T08:05:00Z");
    const s = replicaSeries(events, 1, now);
    expect(s.steps.map((p) => [new Date(p.t).toISOString().slice(11, 19), p.replicas, p.kind])).toEqual([
      ["08:00:00", 1, "before"],
      ["08:00:00", 3, "autoscaled"],
      ["08:02:00", 1, "autoscaled"],
      ["08:05:00", 1, "now"],
    ]);
    expect(s.max).toBe(3);
    expect(s.decisions).toBe(2);
    expect(s.start).toBe(Date.parse("2026-12-03T08:00:00Z"));
    expect(s.end).toBe(now);
  });

  it("trusts the current count over an older entry (a change before the activity window)", () => {
    const s = replicaSeries([ev("2026-12-03T08:00:00Z", "deploy_requested", "revision 1: create, version v1, 1 replica(s)")], 2, Date.parse("2026-12-03T08:01:00Z"));
    expect(s.steps.map((p) => p.replicas)).toEqual([1, 2]);
  });

  it("without any scaling entry shows just the current count, as a flat line", () => {
    const s = replicaSeries([ev("2026-12-03T08:00:00Z", "replica_ready", "replica 0 ready")], 2, 1000);
    expect(s.steps).toHaveLength(1);
    expect(stepPath(s, 100, 50)).toBe("M4,4.0 H96");
  });

  it("draws a step path: horizontal to the next change, then vertical", () => {
    const s = replicaSeries([ev("1970-01-01T00:00:00.000Z", "autoscaled", "scaled 1 -> 2: 3.0 in flight, target 2")], 2, 10);
    // x from 4 to 96 over 10 ms; y: 2 replicas at the top (4), 1 in the middle (25), 0 at 46.
    expect(stepPath(s, 100, 50)).toBe("M4.0,25.0 H4.0 V4.0 H96.0 V4.0");
  });
});

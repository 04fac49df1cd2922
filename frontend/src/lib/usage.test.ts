import { describe, expect, it } from "vitest";
import type { Usage } from "./types";
import { formatAmount, replicasThatFit, tightest, usageBars } from "./usage";

const one = { replicas: 1, cpu: 0.25, memory_mib: 512 };
function usage(reserved: number, running: number): Usage {
  const r = (n: number) => ({ replicas: n, cpu: n * 0.25, memory_mib: n * 512 });
  return {
    quota: { replicas: 5, cpu: 2, memory_mib: 4096 },
    in_use: r(reserved),
    running: r(running),
    available: { replicas: 5 - reserved, cpu: 2 - reserved * 0.25, memory_mib: 4096 - reserved * 512 },
    more_replicas_fit: 5 - reserved,
    new_deployment: { needs: one, fits: reserved < 5, message: "" },
    scale_up: { needs: one, fits: reserved < 5, message: "" },
    deployments: [],
  };
}

describe("usage against the quota", () => {
  it("gives each resource's share reserved and running", () => {
    const bars = usageBars(usage(2, 1));
    expect(bars.map((b) => [b.resource, b.reservedPct, b.runningPct])).toEqual([
      ["replicas", 40, 20],
      ["cpu", 25, 12.5],
      ["memory_mib", 25, 12.5],
    ]);
    expect(bars[0]!.text).toBe("2 replicas of 5 replicas in use, 1 replica running, 3 replicas free");
    expect(bars[2]!.text).toBe("1 GiB of 4 GiB in use, 512 MiB running, 3 GiB free");
    expect(tightest(bars)?.resource).toBe("replicas");
  });

  it("clamps a usage above a lowered quota at 100 %", () => {
    const u = usage(6, 6);
    expect(usageBars(u)[0]!.reservedPct).toBe(100);
  });

  it("counts the replicas that still fit from the scarcest resource", () => {
    expect(replicasThatFit(usage(2, 2))).toBe(3);
    const u = usage(2, 2);
    u.available.memory_mib = 700; // memory is what runs out first
    expect(replicasThatFit(u)).toBe(1);
    expect(replicasThatFit(usage(5, 5))).toBe(0);
  });

  it("formats amounts", () => {
    expect(formatAmount("memory_mib", 1536)).toBe("1.5 GiB");
    expect(formatAmount("memory_mib", 512)).toBe("512 MiB");
    expect(formatAmount("cpu", 0.75)).toBe("0.75 CPU");
    expect(formatAmount("replicas", 1)).toBe("1 replica");
  });
});

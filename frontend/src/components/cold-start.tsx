"use client";

// The deployment page's cold start: each replica's measured start, phase by phase, beside the
// deployer's prediction for the same backend. Renders nothing while the API reports neither.

import { formatMs, predictedPhase, prediction, replicaColdStarts, versus } from "@/lib/cold-start";
import type { Deployment } from "@/lib/types";

export function hasColdStart(d: Deployment): boolean {
  return prediction(d.predicted_cold_start) !== null || replicaColdStarts(d).length > 0;
}

export function ColdStartPanel({ deployment }: { deployment: Deployment }) {
  const predicted = prediction(deployment.predicted_cold_start);
  const rows = replicaColdStarts(deployment);
  if (!predicted && rows.length === 0) return null;
  return (
    <div className="space-y-3 text-sm">
      {predicted && (
        <p data-testid="deployment-prediction" data-calibrated={String(predicted.calibrated)}>
          Predicted: <strong>{formatMs(predicted.totalMs)}</strong>
          <span className="text-slate-500"> · {predicted.backendLabel} · {predicted.label}
            {predicted.observations ? ` (${predicted.observations} observed)` : ""}</span>
        </p>
      )}
      {rows.length > 0 ? (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm" aria-label="Measured cold start per replica">
            <thead className="text-xs text-slate-500">
              <tr>
                <th className="py-1 pr-3 font-medium">Replica</th>
                <th className="py-1 pr-3 font-medium">Backend</th>
                <th className="py-1 pr-3 font-medium">Measured</th>
                <th className="py-1 pr-3 font-medium">Phases (measured / predicted)</th>
                <th className="py-1 font-medium">Against the prediction</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ replica, measured }) => {
                const same = predicted && predicted.backend === measured.backend ? predicted : null;
                return (
                  <tr key={`${replica.revision}-${replica.index}`} className="border-t border-slate-100" data-testid="replica-cold-start">
                    <td className="py-1 pr-3">{replica.index} <span className="text-xs text-slate-500">(rev {replica.revision})</span></td>
                    <td className="py-1 pr-3">{measured.backendLabel}</td>
                    <td className="py-1 pr-3 font-medium">{formatMs(measured.totalMs)}</td>
                    <td className="py-1 pr-3 text-xs">
                      {measured.phases.map((p) => {
                        const want = predictedPhase(same, p.key);
                        return <span key={p.key} className="mr-3 inline-block">{p.label} {formatMs(p.ms)}{want !== null ? <span className="text-slate-500"> / {formatMs(want)}</span> : null}</span>;
                      })}
                    </td>
                    <td className="py-1 text-xs text-slate-600">{(same && versus(measured.totalMs, same.totalMs)) ?? "—"}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="text-xs text-slate-500">No replica has reported a measured cold start yet.</p>
      )}
    </div>
  );
}

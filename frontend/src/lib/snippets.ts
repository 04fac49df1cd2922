// Example inputs from a model's signature, and ready-to-paste client snippets.

import type { Signature } from "./types";

/** A plausible row for the model: iris-like values for 4 features, small numbers otherwise. */
export function exampleRow(signature: Signature | null | undefined): number[] {
  const names = signature?.feature_names_in;
  const n = signature?.n_features_in ?? names?.length ?? signature?.smoke?.input?.shape?.[1] ?? 4;
  const iris = [5.1, 3.5, 1.4, 0.2];
  return Array.from({ length: Math.max(1, Math.min(Number(n) || 1, 512)) }, (_, i) =>
    n === 4 ? (iris[i] ?? 0) : Math.round(((i % 7) + 1) * 0.5 * 100) / 100,
  );
}

/** The simple JSON body: `records` when the model knows its feature names, else `instances`. */
export function exampleBody(signature: Signature | null | undefined): Record<string, unknown> {
  const row = exampleRow(signature);
  const names = signature?.feature_names_in;
  if (names && names.length === row.length) {
    return { records: [Object.fromEntries(names.map((name, i) => [name, row[i]]))] };
  }
  return { instances: [row] };
}

export function oipBody(signature: Signature | null | undefined): Record<string, unknown> {
  const row = exampleRow(signature);
  return { inputs: [{ name: "input-0", shape: [1, row.length], datatype: "FP64", data: row }] };
}

export function curlSimple(url: string, body: unknown): string {
  return [
    `curl -X POST '${url}' \\`,
    `  -H "Authorization: Bearer $KUBESERVE_API_KEY" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d '${JSON.stringify(body)}'`,
  ].join("\n");
}

export function curlOip(url: string, modelName: string, body: unknown): string {
  return [
    `curl -X POST '${url}/v2/models/${modelName}/infer' \\`,
    `  -H "Authorization: Bearer $KUBESERVE_API_KEY" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d '${JSON.stringify(body)}'`,
  ].join("\n");
}

export function pythonSimple(url: string, body: unknown): string {
  return [
    "import os, requests",
    "",
    "response = requests.post(",
    `    "${url}",`,
    `    headers={"Authorization": f"Bearer {os.environ['KUBESERVE_API_KEY']}"},`,
    `    json=${toPython(body)},`,
    "    timeout=30,",
    ")",
    "response.raise_for_status()",
    'print(response.json()["predictions"])',
  ].join("\n");
}

export function pythonOip(url: string, modelName: string, body: unknown): string {
  return [
    "import os, requests",
    "",
    "response = requests.post(",
    `    "${url}/v2/models/${modelName}/infer",`,
    `    headers={"Authorization": f"Bearer {os.environ['KUBESERVE_API_KEY']}"},`,
    `    json=${toPython(body)},`,
    "    timeout=30,",
    ")",
    "response.raise_for_status()",
    'for output in response.json()["outputs"]:',
    '    print(output["name"], output["data"])',
  ].join("\n");
}

function toPython(value: unknown): string {
  return JSON.stringify(value).replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None");
}

/** Pretty JSON whose innermost arrays of numbers/strings stay on one line (readable rows). */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/\[\s*([^[\]{}]*?)\s*\]/g, (_m, inner: string) =>
    `[${inner.split(/,\s*/).map((x) => x.trim()).join(", ")}]`,
  );
}

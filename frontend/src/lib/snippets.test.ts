import { describe, expect, it } from "vitest";
import { exampleBody, oipBody, prettyJson } from "./snippets";

describe("examples from the signature", () => {
  it("uses n_features_in for an array model", () => {
    expect(exampleBody({ n_features_in: 4 })).toEqual({ instances: [[5.1, 3.5, 1.4, 0.2]] });
    expect(oipBody({ n_features_in: 3 })).toMatchObject({ inputs: [{ shape: [1, 3], datatype: "FP64" }] });
  });
  it("uses records when the model knows its feature names", () => {
    const body = exampleBody({ n_features_in: 2, feature_names_in: ["age", "income"] }) as { records: Record<string, number>[] };
    expect(Object.keys(body.records[0] ?? {})).toEqual(["age", "income"]);
  });
  it("keeps rows on one line", () => {
    expect(prettyJson({ instances: [[1, 2]] })).toBe('{\n  "instances": [\n    [1, 2]\n  ]\n}');
  });
});

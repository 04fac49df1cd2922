// Parse an AsyncAPI document with the official parser; print every diagnostic, exit 1 on any
// error or warning. Usage: node check.mjs ../../../docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser, fromFile } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node check.mjs FILE");
  process.exit(2);
}
readFileSync(path); // a missing file is a clear error, not a parser diagnostic
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
// severity: 0 error, 1 warning, 2 information, 3 hint
const serious = diagnostics.filter((d) => d.severity <= 1);
for (const d of diagnostics) {
  console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code} ${d.path.join(".")}: ${d.message}`);
}
if (!document || serious.length > 0) {
  console.log(`FAILED: ${serious.length} errors/warnings`);
  process.exit(1);
}
console.log(`OK: ${document.messages().length} messages, ${document.operations().length} operations`);

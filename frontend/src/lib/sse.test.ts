import { describe, expect, it } from "vitest";
import { SseParser, logsQuery, parseLogEvent, readSse, type SseEvent } from "./sse";

describe("server-sent events over fetch", () => {
  it("parses events split anywhere across chunks, skipping comments", () => {
    const body = ': logs\n\nevent: log\ndata: {"replica": 0, "line": "hello", "pod": null}\n\n: keep-alive\n\nevent: end\ndata: {}\n\n';
    for (const size of [1, 3, 7, body.length]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < body.length; i += size) events.push(...parser.feed(body.slice(i, i + size)));
      expect(events).toEqual([
        { event: "log", data: '{"replica": 0, "line": "hello", "pod": null}' },
        { event: "end", data: "{}" },
      ]);
    }
  });

  it("handles CRLF and CR line ends, multi-line data, ids and the default event name", () => {
    const parser = new SseParser();
    expect(parser.feed("id: 7\r\ndata: a\r\ndata: b\r")).toEqual([]);
    expect(parser.feed("\n\r\ndata:c\r\n\n")).toEqual([
      { event: "message", data: "a\nb", id: "7" },
      { event: "message", data: "c", id: "7" },
    ]);
  });

  it("keeps an unfinished event until its blank line", () => {
    const parser = new SseParser();
    expect(parser.feed("event: log\ndata: x")).toEqual([]);
    expect(parser.feed("\n")).toEqual([]);
    expect(parser.feed("\n")).toEqual([{ event: "log", data: "x" }]);
  });

  it("reads log events and ignores anything malformed", () => {
    expect(parseLogEvent({ event: "log", data: '{"replica": 1, "line": "GET /health 200", "pod": "p-1"}' }))
      .toEqual({ replica: 1, line: "GET /health 200", pod: "p-1" });
    expect(parseLogEvent({ event: "log", data: "not json" })).toBeNull();
    expect(parseLogEvent({ event: "log", data: '{"line": 3}' })).toBeNull();
    expect(parseLogEvent({ event: "end", data: "{}" })).toBeNull();
  });

  it("builds the logs query", () => {
    expect(logsQuery({ replica: null, follow: true, tail: 200 })).toBe("tail=200&follow=true");
    expect(logsQuery({ replica: 1, follow: false, tail: 50, since: "10m" })).toBe("replica=1&tail=50&since=10m");
  });
});

describe("readSse", () => {
  function body(chunks: string[]): ReadableStream<Uint8Array> {
    const enc = new TextEncoder();
    return new ReadableStream({
      start(controller) {
        for (const c of chunks) controller.enqueue(enc.encode(c));
        controller.close();
      },
    });
  }

  it("hands every complete event over, across byte chunks, and drops an unfinished one at the end", async () => {
    const seen: SseEvent[] = [];
    await readSse(body([": logs\n\nevent: log\ndata: {\"replica\": 0, \"li", "ne\": \"ready\"}\n\n", "event: end\ndata: {}\n\n", "event: log\ndata: cut"]), (e) => seen.push(e));
    expect(seen.map((e) => e.event)).toEqual(["log", "end"]);
    expect(parseLogEvent(seen[0]!)).toEqual({ replica: 0, line: "ready", pod: null });
  });

  it("stops quietly when aborted", async () => {
    const controller = new AbortController();
    const never = new ReadableStream<Uint8Array>({ start() {} });
    const done = readSse(never, () => {}, controller.signal);
    controller.abort();
    await expect(done).resolves.toBeUndefined();
  });
});

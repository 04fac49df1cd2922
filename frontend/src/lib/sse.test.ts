import { describe, expect, it } from "vitest";
import { SseParser, logsQuery, parseLogEvent } from "./sse";

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

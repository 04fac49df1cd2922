// An incremental parser of a text/event-stream body (the WHATWG "server-sent events" format),
// for streams read with fetch: EventSource cannot send the Authorization header the logs
// route needs, and an access token must not go into a URL.

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;

  /** Feed the next decoded chunk; returns the events it completed (chunks may split lines
   * and events anywhere). */
  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const done = this.line(line);
      if (done) out.push(done);
    }
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === "") {
      if (!this.data.length) {
        this.event = "";
        return null;
      }
      const ev: SseEvent = { event: this.event || "message", data: this.data.join("\n") };
      if (this.id !== undefined) ev.id = this.id;
      this.data = [];
      this.event = "";
      return ev;
    }
    if (line.startsWith(":")) return null; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

/** One replica log line of `GET /deployments/{id}/logs` (SSE `log` event). */
export interface LogLine {
  replica: number;
  line: string;
  pod?: string | null;
}

export function parseLogEvent(ev: SseEvent): LogLine | null {
  if (ev.event !== "log") return null;
  try {
    const data = JSON.parse(ev.data) as Record<string, unknown>;
    if (typeof data.line !== "string" || typeof data.replica !== "number") return null;
    return { replica: data.replica, line: data.line, pod: typeof data.pod === "string" ? data.pod : null };
  } catch {
    return null;
  }
}

/** The logs route's query string: `tail` lines per replica, then more while `follow`. */
export function logsQuery(opts: { replica: number | null; follow: boolean; tail: number; since?: string }): string {
  const q = new URLSearchParams();
  if (opts.replica !== null) q.set("replica", String(opts.replica));
  q.set("tail", String(opts.tail));
  if (opts.follow) q.set("follow", "true");
  if (opts.since) q.set("since", opts.since);
  return q.toString();
}

/** Read a text/event-stream body to its end (or until `signal` aborts), handing each event to
 * `onEvent`. Resolves when the stream ends; an abort resolves quietly. */
export async function readSse(body: ReadableStream<Uint8Array>, onEvent: (ev: SseEvent) => void, signal?: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const cancel = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const ev of parser.feed(decoder.decode(value, { stream: true }))) onEvent(ev);
    }
    // An event the stream did not finish with a blank line is dropped, as EventSource does.
    for (const ev of parser.feed(decoder.decode())) onEvent(ev);
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

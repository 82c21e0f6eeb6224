// Server-Sent Events parsing for fetch() bodies (EventSource cannot POST or send an API key).
// Follows the WHATWG event-stream rules: lines end in \n, \r\n or \r; "field: value"; a blank line
// dispatches; comment lines start with ":"; data lines join with "\n".

export class SseParser {
  /** @param {(event: {event: string, data: string, id: string}) => void} onEvent */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
    this.lastId = "";
  }

  reset() {
    this.eventName = "";
    this.dataLines = [];
  }

  /** Feed decoded text; complete events are dispatched, a partial line waits for the next chunk. */
  feed(text) {
    this.buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  /** The stream ended: an event without its closing blank line is dropped, as the standard says. */
  end() {
    this.buffer = "";
    this.reset();
  }

  line(line) {
    if (line === "") {
      if (this.dataLines.length) {
        this.onEvent({ event: this.eventName || "message", data: this.dataLines.join("\n"), id: this.lastId });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.eventName = value;
    else if (field === "data") this.dataLines.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastId = value;
  }
}

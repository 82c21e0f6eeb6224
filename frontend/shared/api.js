// The ragtune API from the browser: every call carries the key, every failure becomes an ApiError with a
// `kind` the pages turn into an error state (network, rate_limited, unauthorized, busy, ...).

import { SseParser } from "./sse.js";

export class ApiError extends Error {
  /**
   * @param {string} kind network | unauthorized | forbidden | rate_limited | busy | not_found | invalid | server
   * @param {number} status HTTP status (0 when the server could not be reached)
   * @param {string} code the server's stable error code
   * @param {string} message for people
   * @param {number|null} retryAfterS seconds the server asked us to wait (Retry-After), if it said
   */
  constructor(kind, status, code, message, retryAfterS = null) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

function kindOf(status, code) {
  if (status === 401) return "unauthorized";
  if (status === 429) return "rate_limited";
  if (status === 503) return "busy";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status >= 400 && status < 500) return "invalid";
  return code === "busy" ? "busy" : "server";
}

/** Retry-After as seconds: a number of seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterSeconds(header) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** An ApiError from a failed response; the body is `{"error": {code, message}}` or `{code, message}`. */
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const detail = (body && (body.error || body)) || {};
  const code = typeof detail.code === "string" ? detail.code : `http_${response.status}`;
  const message = typeof detail.message === "string" && detail.message ? detail.message : response.statusText || "request failed";
  const retry = retryAfterSeconds(response.headers.get("Retry-After"));
  return new ApiError(kindOf(response.status, code), response.status, code, message, retry);
}

function networkError(cause) {
  const error = new ApiError("network", 0, "network", "The server cannot be reached. Check your connection.");
  error.cause = cause;
  return error;
}

export class ApiClient {
  /** @param {{baseUrl?: string, key?: string}} options baseUrl "" = this page's own server */
  constructor({ baseUrl = "", key = "" } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.key = key;
  }

  headers(extra = {}) {
    return { ...(this.key ? { Authorization: `Bearer ${this.key}` } : {}), ...extra };
  }

  /** The raw Response of a call that succeeded; an ApiError otherwise. */
  async fetch(method, path, { json, body, headers = {}, signal } = {}) {
    const init = { method, headers: this.headers(headers), signal, credentials: "omit" };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    let response;
    try {
      response = await fetch(this.baseUrl + path, init);
    } catch (cause) {
      if (cause && cause.name === "AbortError") throw cause;
      throw networkError(cause);
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  /** JSON in, JSON out (null for 204 No Content). */
  async request(method, path, options = {}) {
    const response = await this.fetch(method, path, options);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  get(path, options) {
    return this.request("GET", path, options);
  }

  post(path, json, options = {}) {
    return this.request("POST", path, { ...options, json });
  }

  delete(path, options) {
    return this.request("DELETE", path, options);
  }

  /**
   * POST /v1/chat with `stream: true`: yields {type: "token", text} events, then one {type: "final", data}.
   * An `error` event, a failed response or a broken connection throws an ApiError.
   */
  async *streamChat(body, { signal } = {}) {
    const response = await this.fetch("POST", "/v1/chat", {
      json: { ...body, stream: true },
      headers: { Accept: "text/event-stream" },
      signal,
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const pending = [];
    const parser = new SseParser((event) => pending.push(event));
    let finished = false;
    try {
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (cause) {
          if (cause && cause.name === "AbortError") throw cause;
          throw networkError(cause);
        }
        parser.feed(chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true }));
        while (pending.length) {
          const event = pending.shift();
          const data = JSON.parse(event.data);
          if (event.event === "token") yield { type: "token", text: String(data.text ?? "") };
          else if (event.event === "final") {
            finished = true;
            yield { type: "final", data };
          } else if (event.event === "error") {
            throw new ApiError(data.code === "busy" ? "busy" : "server", 200, data.code || "error", data.message || "the answer failed");
          }
        }
        if (chunk.done) break;
      }
    } finally {
      parser.end();
      reader.cancel().catch(() => {});
    }
    if (!finished) throw networkError(new Error("the answer stream ended early"));
  }
}

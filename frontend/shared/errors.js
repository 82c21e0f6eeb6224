// What an ApiError means to a person, and what they can do about it: one place for every page's error state.

/** Server messages are lower-case fragments ("the API key is unknown or revoked"): make them a sentence. */
function sentence(text) {
  const trimmed = String(text).trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * @param {import("./api.js").ApiError|Error} error
 * @returns {{title: string, detail: string, retryAfterS: number|null, signOut: boolean, retry: boolean}}
 */
export function describeError(error) {
  const retryAfterS = error && Number.isFinite(error.retryAfterS) ? error.retryAfterS : null;
  const detail = sentence((error && error.message) || "Something went wrong");
  switch (error && error.kind) {
    case "network":
      return { title: "You appear to be offline", detail: "The server cannot be reached. Check your connection, then retry.", retryAfterS, signOut: false, retry: true };
    case "rate_limited":
      return { title: "Too many requests", detail, retryAfterS, signOut: false, retry: true };
    case "busy":
      return { title: "The assistant is busy", detail, retryAfterS, signOut: false, retry: true };
    case "unauthorized":
      return { title: "Your API key is not valid any more", detail: `${detail} It may have been revoked: sign in with a new key.`, retryAfterS, signOut: true, retry: false };
    case "forbidden":
      return { title: "Not allowed", detail, retryAfterS, signOut: false, retry: false };
    case "not_found":
      return { title: "Not found", detail, retryAfterS, signOut: false, retry: false };
    case "invalid":
      return { title: "The request was refused", detail, retryAfterS, signOut: false, retry: false };
    default:
      return { title: "Something went wrong", detail, retryAfterS, signOut: false, retry: true };
  }
}

/** Human words for a guardrail action, e.g. {rail: "pii", action: "mask"}. */
export function describeRail({ rail, action }) {
  const rails = {
    injection: "a prompt-injection attempt was detected",
    pii: "personal data was masked",
    secret: "a secret was masked",
    chunk_injection: "instructions hidden in a document were neutralised",
    grounding: "an answer its sources did not support was withheld",
    leakage: "an answer that repeated internal instructions was withheld",
    topic: "the question is outside the assistant's topics",
  };
  const verbs = { block: "blocked", mask: "masked", replace: "replaced", drop: "dropped", refuse: "refused" };
  const what = rails[rail] || `the ${String(rail)} rail acted`;
  return `${what}${verbs[action] && !what.includes(verbs[action]) ? ` (${verbs[action]})` : ""}`;
}

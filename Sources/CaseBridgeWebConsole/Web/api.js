// The Console API over Connect JSON, as this node serves it to its own staff. The session is an
// HttpOnly cookie; each call carries the CSRF token the sign-in set in a readable cookie.

const base = "/casebridge.v1.Console/";

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Set by the app: shows the sign-in dialog and resolves once signed in again. Work typed into
 *  the page stays where it is, and the call that found the session ended is sent again. */
let signInAgain = null;
export function onSessionEnded(handler) {
  signInAgain = handler;
}

const withoutSession = new Set(["Login", "BeginEnrolment", "CompleteEnrolment", "WhoAmI", "Logout"]);

function csrfToken() {
  const pair = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("cb_csrf="));
  return pair ? pair.slice("cb_csrf=".length) : "";
}

function post(method, body, signal) {
  return fetch(base + method, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body || {}),
    signal,
  });
}

async function failure(response) {
  let error = {};
  try {
    error = await response.json();
  } catch {
    error = { code: "unavailable", message: `HTTP ${response.status}` };
  }
  return new ApiError(error.code || "unknown", error.message || `HTTP ${response.status}`, response.status);
}

async function send(method, body, signal) {
  for (;;) {
    let response;
    try {
      response = await post(method, body, signal);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError("unavailable", "the node did not answer", 0);
    }
    if (response.ok) return response;
    const error = await failure(response);
    if (error.code === "unauthenticated" && !withoutSession.has(method) && signInAgain) {
      await signInAgain();
      continue;
    }
    throw error;
  }
}

/** A unary call: the reply message. */
export async function call(method, body = {}) {
  return (await send(method, body)).json();
}

/** A server-streaming call, whole: every message in a list. */
export async function list(method, body = {}) {
  const messages = [];
  await stream(method, body, (message) => messages.push(message));
  return messages;
}

/** A server-streaming call as Server-Sent Events: `onMessage` for each message as it comes. */
async function stream(method, body, onMessage, signal) {
  const response = await send(method, body, signal);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const kind = /^event: (\w+)/m.exec(event)?.[1] || "message";
      const data = /^data: (.*)$/m.exec(event)?.[1] || "{}";
      if (kind === "message") onMessage(JSON.parse(data));
      else if (kind === "error") {
        const error = JSON.parse(data);
        throw new ApiError(error.code, error.message, 200);
      } else return;
    }
  }
}

/** Follows the node's case events for as long as the page wants them, resuming after the last
 *  one seen when the stream ends (a restart, a network change). Returns a function that stops. */
export function watch(onEvent) {
  const controller = new AbortController();
  let after = "0";
  let delay = 1000;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        await stream("Watch", { afterEventId: after }, (event) => {
          after = event.eventId;
          delay = 1000;
          onEvent(event);
        }, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error.code === "permission_denied") return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  })();
  return () => controller.abort();
}

// Helpers shared by the dashboard's views: DOM building (text only, never HTML), the API client
// (bearer key from sessionStorage), polling while a view is mounted, relative times.
export const KEY = "telemetry.key";
/** Builds an element; children are nodes or text (never parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat())
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (res.status === 401) {
    window.dispatchEvent(new CustomEvent("telemetry:unauthorized"));
    throw new ApiError(401, json);
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Runs fn now and every ms while the view is mounted; returns the stop function. */
export function every(ms, fn) {
  let stopped = false;
  let timer;
  const loop = async () => {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) console.warn(err);
    }
    if (!stopped) timer = setTimeout(loop, ms);
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export const ago = (ms) => {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return "in the future";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
};

/**
 * A view's button handlers: `act(fn)` is a click handler that clears `message` (and `clear`),
 * runs fn, shows its error in `message`, then calls `after` (the view's refresh) either way.
 */
export const actions =
  (message, after, ...clear) =>
  (fn) =>
  async () => {
    for (const el of [message, ...clear]) el.textContent = "";
    try {
      await fn();
    } catch (err) {
      message.textContent = err.message;
    }
    await after();
  };

/** A form field: its label around the input and a slot for the server's error on `path`. */
export const field = (path, label, input) =>
  h(
    "div",
    { class: "field", "data-field": path },
    h("label", {}, label, input),
    h("div", { class: "field-error", "data-error-for": path }),
  );

/** Clears the errors showFieldErrors placed. */
export function clearFieldErrors(form, formError) {
  for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
  for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
  formError.textContent = "";
}

/**
 * The server's field errors (err.body.error.details) next to the deepest field their path names
 * (condition.circle.lat, condition.threshold, devices.0 -> devices), after `place` maps the path;
 * the others, or the message when there are no details, in formError.
 */
export function showFieldErrors(form, formError, err, place = (path) => path) {
  const details = err.body?.error?.details ?? [];
  const unplaced = [];
  for (const d of details) {
    let path = place(d.path);
    let slot = null;
    while (path && !(slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`)))
      path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "";
    if (slot) {
      slot.textContent = d.message;
      slot.parentElement.classList.add("invalid");
    } else unplaced.push(d.message);
  }
  formError.textContent = details.length ? unplaced.join("; ") : err.message;
}

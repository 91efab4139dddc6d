// The API, as the page uses it: the token lives in an HttpOnly cookie per inbox.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export const inboxPath = (address) => `/api/inboxes/${encodeURIComponent(address)}`;

export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, "unreachable", "The server cannot be reached.");
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: handled below */ }
  if (!response.ok) {
    const error = (data && data.error) || { code: "http", message: `HTTP ${response.status}` };
    throw new ApiError(response.status, error.code, error.message,
      Number(response.headers.get("Retry-After")) || 0);
  }
  return data;
}

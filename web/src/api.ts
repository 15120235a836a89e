import type { Me } from "./protocol";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

/** What to tell the user when a request failed: the server's own words, or that it is unreachable. */
export function errorText(e: unknown): string {
  return e instanceof ApiError ? e.message : "Could not reach the server. Please try again.";
}

async function readError(res: Response): Promise<ApiError> {
  let id = "HTTP_" + res.status;
  let message = `Request failed (${res.status})`;
  try {
    const body = (await res.json()) as { id?: unknown; message?: unknown };
    if (typeof body.id === "string") id = body.id;
    if (typeof body.message === "string" && body.message) message = body.message;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, id, message);
}

async function post(path: string, body?: unknown): Promise<void> {
  await request("POST", path, body);
}

/** A JSON request; resolves with the parsed body (undefined for 204), throws ApiError on 4xx/5xx. */
export async function request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await readError(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export function createAccount(username: string, email: string, password: string): Promise<void> {
  return post("/api/create-account", { username, email, password });
}

export function login(email: string, password: string): Promise<void> {
  return post("/api/login", { email, password });
}

/** Changes the username and/or the avatar (a file id of an uploaded image, or null for none). */
export function updateProfile(changes: { username?: string; avatar?: string | null }): Promise<Me> {
  return request<Me>("PATCH", "/api/me", changes);
}

/** Changes the password; the server ends every other session and sets a new cookie. */
export function changePassword(currentPassword: string, newPassword: string): Promise<unknown> {
  return request("POST", "/api/me/password", { currentPassword, newPassword });
}

export function logout(): Promise<void> {
  return post("/api/logout");
}

/** Returns the current user, or null when not logged in (401). Throws on other failures. */
export async function me(): Promise<Me | null> {
  const res = await fetch("/api/me", { credentials: "same-origin" });
  if (res.status === 401) return null;
  if (!res.ok) throw await readError(res);
  return (await res.json()) as Me;
}

export function wsUrl(loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/api/ws?platform=web`;
}

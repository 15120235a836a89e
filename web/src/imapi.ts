/** HTTP calls of the native instant-messaging API (bodies are camelCase JSON). */
import { request } from "./api";
import type { ImMessage, Member, Presence, Role, SyncState } from "./im";
import type { UserRef } from "./protocol";
import { searchQueryString, type MessageSearch, type SearchPage } from "./search";

export interface FriendRequest {
  from: UserRef;
  to: UserRef;
  note: string;
  createdAt: number;
}

export interface JoinRequest {
  user: UserRef;
  note: string;
}

const enc = encodeURIComponent;

/** Users by username prefix (ignoring case), or by a whole email local part followed by `@`. */
export const searchUsers = (q: string, limit = 20) => request<UserRef[]>("GET", `/api/search/users?q=${enc(q)}&limit=${limit}`);
export const searchMessages = (s: MessageSearch) => request<SearchPage>("GET", `/api/search/messages?${searchQueryString(s)}`);
export const presence = (ids: number[]) =>
  ids.length === 0 ? Promise.resolve([] as Presence[]) : request<Presence[]>("GET", `/api/presence?ids=${ids.join(",")}`);
export const friends = () => request<UserRef[]>("GET", "/api/friends");
export const removeFriend = (userId: number) => request<void>("DELETE", `/api/friends/${userId}`);
export const friendRequests = () => request<{ incoming: FriendRequest[]; outgoing: FriendRequest[] }>("GET", "/api/friends/requests");
export const requestFriend = (userId: number, note: string) => request<void>("POST", "/api/friends/requests", { userId, note });
export const decideFriend = (userId: number, action: "accept" | "reject" | "cancel") =>
  request<void>("POST", `/api/friends/requests/${userId}/${action}`);
export const blocked = () => request<UserRef[]>("GET", "/api/blocks");
export const block = (userId: number) => request<void>("POST", "/api/blocks", { userId });
export const unblock = (userId: number) => request<void>("DELETE", `/api/blocks/${userId}`);
export const openDirect = (userId: number) => request<{ conversationId: number }>("POST", "/api/direct", { userId });
export const createGroup = (name: string, members: number[]) =>
  request<{ conversationId: number }>("POST", "/api/groups", { name, members });
export const invite = (id: number, userIds: number[]) => request<void>("POST", `/api/groups/${id}/invite`, { userIds });
export const joinRequests = (id: number) => request<JoinRequest[]>("GET", `/api/groups/${id}/join-requests`);
export const requestJoin = (id: number, note: string) => request<void>("POST", `/api/groups/${id}/join-requests`, { note });
export const decideJoin = (id: number, userId: number, action: "approve" | "reject") =>
  request<void>("POST", `/api/groups/${id}/join-requests/${userId}/${action}`);
export const kick = (id: number, userId: number) => request<void>("POST", `/api/groups/${id}/kick`, { userId });
export const leave = (id: number) => request<void>("POST", `/api/groups/${id}/leave`);
export const transfer = (id: number, userId: number) => request<void>("POST", `/api/groups/${id}/transfer`, { userId });
export const setRole = (id: number, userId: number, role: Role) => request<void>("POST", `/api/groups/${id}/role`, { userId, role });
export const renameGroup = (id: number, name: string) => request<void>("POST", `/api/groups/${id}/name`, { name });
export const dissolve = (id: number) => request<void>("POST", `/api/groups/${id}/dissolve`);
export const members = (id: number) => request<Member[]>("GET", `/api/conversations/${id}/members`);
export const pull = (id: number, after: number, limit = 200) =>
  request<{ messages: ImMessage[]; lastSeq: number }>("GET", `/api/conversations/${id}/messages?after=${after}&limit=${limit}`);
export const recall = (id: number, seq: number) => request<void>("POST", `/api/conversations/${id}/messages/${seq}/recall`);
export const edit = (id: number, seq: number, content: string) =>
  request<void>("PATCH", `/api/conversations/${id}/messages/${seq}`, { content });
export const hide = (id: number, seq: number) => request<void>("POST", `/api/conversations/${id}/messages/${seq}/hide`);
export const sync = (inboxAfter: number) => request<SyncState>("GET", `/api/sync?inboxAfter=${inboxAfter}`);

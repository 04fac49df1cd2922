import { ApiClient } from "./api";

/** Fires "signed-out" when the session ends (failed refresh, logout). */
export const sessionEvents = new EventTarget();

// Same origin by default: the gateway serves this app; `npm run dev` proxies /api/v1.
export const api = new ApiClient({
  baseUrl: process.env.NEXT_PUBLIC_KUBESERVE_API_URL ?? "",
  onSignedOut: () => sessionEvents.dispatchEvent(new Event("signed-out")),
});

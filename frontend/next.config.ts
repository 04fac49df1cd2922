import type { NextConfig } from "next";
import { PHASE_DEVELOPMENT_SERVER } from "next/constants.js";

// Production: a static export (`out/`) that the gateway serves at `/`, same origin as the API.
// `npm run dev`: the dev server proxies /api/v1 to KUBESERVE_GATEWAY_URL, so the browser still
// sees one origin (the refresh cookie and server-sent events work as in production).
export default function config(phase: string): NextConfig {
  const base: NextConfig = {
    reactStrictMode: true,
    trailingSlash: true,
    poweredByHeader: false,
    images: { unoptimized: true },
  };
  if (phase === PHASE_DEVELOPMENT_SERVER) {
    const gateway = (process.env.KUBESERVE_GATEWAY_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
    return {
      ...base,
      // The API has no trailing slashes; in dev, Next would redirect /api/v1/x to /api/v1/x/
      // before proxying it.
      trailingSlash: false,
      async rewrites() {
        return [{ source: "/api/v1/:path*", destination: `${gateway}/api/v1/:path*` }];
      },
    };
  }
  return { ...base, output: "export" };
}

"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, type ReactNode } from "react";
import { useLive } from "@/lib/live";
import { useSession } from "@/lib/session";
import { CubeIcon, GaugeIcon, KeyIcon, LogoutIcon, RocketIcon, UploadIcon } from "./icons";
import { Spinner } from "./ui";

const NAV = [
  { href: "/models/", label: "Models", icon: CubeIcon },
  { href: "/upload/", label: "Upload", icon: UploadIcon },
  { href: "/deployments/", label: "Deployments", icon: RocketIcon },
  { href: "/usage/", label: "Usage", icon: GaugeIcon },
  { href: "/api-keys/", label: "API keys", icon: KeyIcon },
];

/** The signed-in layout and route guard: anonymous visitors go to /login/?next=<here>. */
export function AppShell({ children }: { children: ReactNode }) {
  const { status, user, logout } = useSession();
  const { connected } = useLive();
  const pathname = usePathname();
  const router = useRouter();

  useEffect(() => {
    if (status === "signed-out") {
      const here = window.location.pathname + window.location.search;
      router.replace(`/login/?next=${encodeURIComponent(here)}`);
    }
  }, [status, router]);

  if (status !== "signed-in") {
    return (
      <main className="grid min-h-screen place-items-center">
        <Spinner label={status === "loading" ? "Checking your session…" : "Redirecting to login…"} />
      </main>
    );
  }

  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3">
          <Link href="/models/" className="flex items-center gap-2 text-lg font-semibold text-indigo-700">
            <CubeIcon /> KubeServe
          </Link>
          <nav aria-label="Main" className="order-3 -mx-1 flex w-full flex-wrap gap-1 sm:order-none sm:w-auto">
            {NAV.map(({ href, label, icon: Icon }) => {
              const here = pathname.endsWith("/") ? pathname : `${pathname}/`;
              const active = here.startsWith(href);
              return (
                <Link key={href} href={href} aria-current={active ? "page" : undefined}
                  className={`flex items-center gap-1.5 whitespace-nowrap rounded-md px-3 py-1.5 text-sm font-medium ${active ? "bg-indigo-50 text-indigo-700" : "text-slate-600 hover:bg-slate-100"}`}>
                  <Icon /> {label}
                </Link>
              );
            })}
          </nav>
          <div className="ml-auto flex items-center gap-3 text-sm">
            <span className="flex items-center gap-1.5 text-xs text-slate-500" data-testid="live-indicator" data-live={connected}
              title={connected ? "Live updates from the server" : "Live updates unavailable: refreshing every few seconds"}>
              <span className={`h-2 w-2 rounded-full ${connected ? "bg-emerald-500" : "bg-slate-400"}`} aria-hidden="true" />
              {connected ? "Live" : "Polling"}
            </span>
            <span className="hidden text-slate-600 md:inline" data-testid="user-email">{user?.email}</span>
            <button type="button" className="btn" onClick={() => void logout()}>
              <LogoutIcon /> Log out
            </button>
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-6xl px-4 py-6">{children}</main>
    </div>
  );
}

export function PageHeader({ title, children, actions }: { title: string; children?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-6 flex flex-wrap items-end justify-between gap-3">
      <div>
        <h1 className="text-2xl font-semibold tracking-tight">{title}</h1>
        {children && <div className="mt-1 text-sm text-slate-600">{children}</div>}
      </div>
      {actions}
    </div>
  );
}

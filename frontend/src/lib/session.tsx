"use client";

import { useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, sessionEvents } from "./client";
import type { User } from "./types";

type Status = "loading" | "signed-in" | "signed-out";

interface Session {
  status: Status;
  user: User | null;
  login(email: string, password: string): Promise<void>;
  logout(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<Status>("loading");
  const [user, setUser] = useState<User | null>(null);

  const signedOut = useCallback(() => {
    setUser(null);
    setStatus("signed-out");
    queryClient.clear();
  }, [queryClient]);

  useEffect(() => {
    sessionEvents.addEventListener("signed-out", signedOut);
    return () => sessionEvents.removeEventListener("signed-out", signedOut);
  }, [signedOut]);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      if (!(await api.restore())) return; // restore() already announced "signed-out"
      try {
        const me = await api.get<User>("/auth/me");
        if (!cancelled) {
          setUser(me);
          setStatus("signed-in");
        }
      } catch {
        if (!cancelled) signedOut();
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [signedOut]);

  const login = useCallback(async (email: string, password: string) => {
    await api.login(email, password);
    const me = await api.get<User>("/auth/me");
    queryClient.clear();
    setUser(me);
    setStatus("signed-in");
  }, [queryClient]);

  const logout = useCallback(async () => {
    await api.logout();
  }, []);

  const value = useMemo(() => ({ status, user, login, logout }), [status, user, login, logout]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

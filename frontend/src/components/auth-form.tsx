"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState, type FormEvent } from "react";
import { api } from "@/lib/client";
import { useSession } from "@/lib/session";
import { CubeIcon, SpinnerIcon } from "./icons";
import { ErrorAlert } from "./ui";

function safeNext(): string {
  // Only a local path: never an open redirect to another site.
  const next = new URLSearchParams(window.location.search).get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/models/";
}

export function AuthForm({ mode }: { mode: "login" | "register" }) {
  const { status, login } = useSession();
  const router = useRouter();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    if (status === "signed-in") router.replace(safeNext());
  }, [status, router]);

  useEffect(() => {
    document.title = `${mode === "login" ? "Log in" : "Create account"} · KubeServe`;
    if (mode === "login" && new URLSearchParams(window.location.search).get("registered")) {
      setNotice("Account created. Log in to continue.");
    }
  }, [mode]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "register") {
        await api.register(email, password);
      }
      await login(email, password);
      router.replace(safeNext());
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <main className="flex min-h-screen items-center justify-center px-4 py-10">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex items-center justify-center gap-2 text-2xl font-semibold text-indigo-700">
          <CubeIcon /> KubeServe
        </div>
        <form onSubmit={submit} className="space-y-4 rounded-lg border border-slate-200 bg-white p-6 shadow-sm" noValidate={false}>
          <h1 className="text-xl font-semibold">{mode === "login" ? "Log in" : "Create your account"}</h1>
          {notice && <p role="status" className="rounded-md bg-emerald-50 p-2 text-sm text-emerald-800">{notice}</p>}
          <ErrorAlert error={error} />
          <div>
            <label htmlFor="email" className="label">Email</label>
            <input id="email" name="email" type="email" autoComplete="email" required className="input"
              value={email} onChange={(e) => setEmail(e.target.value)} />
          </div>
          <div>
            <label htmlFor="password" className="label">Password</label>
            <input id="password" name="password" type="password" required className="input"
              autoComplete={mode === "login" ? "current-password" : "new-password"}
              minLength={mode === "register" ? 8 : undefined}
              aria-describedby={mode === "register" ? "password-help" : undefined}
              value={password} onChange={(e) => setPassword(e.target.value)} />
            {mode === "register" && <p id="password-help" className="mt-1 text-xs text-slate-500">At least 8 characters; a long passphrase is best.</p>}
          </div>
          <button type="submit" className="btn btn-primary w-full py-2" disabled={busy}>
            {busy && <SpinnerIcon />} {mode === "login" ? "Log in" : "Create account"}
          </button>
          <p className="text-center text-sm text-slate-600">
            {mode === "login" ? (
              <>No account yet? <Link className="link" href="/register/">Create one</Link></>
            ) : (
              <>Already registered? <Link className="link" href="/login/">Log in</Link></>
            )}
          </p>
        </form>
      </div>
    </main>
  );
}

"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { Spinner } from "@/components/ui";
import { useSession } from "@/lib/session";

export default function Home() {
  const { status } = useSession();
  const router = useRouter();
  useEffect(() => {
    if (status === "signed-in") router.replace("/models/");
    else if (status === "signed-out") router.replace("/login/");
  }, [status, router]);
  return (
    <main className="grid min-h-screen place-items-center">
      <Spinner />
    </main>
  );
}

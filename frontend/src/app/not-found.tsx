import Link from "next/link";

export default function NotFound() {
  return (
    <main className="grid min-h-screen place-items-center px-4 text-center">
      <div>
        <h1 className="text-2xl font-semibold">Page not found</h1>
        <p className="mt-2 text-slate-600">There is nothing at this address.</p>
        <Link href="/models/" className="link mt-4 inline-block">Go to your models</Link>
      </div>
    </main>
  );
}

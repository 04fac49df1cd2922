"""Serves the dashboard's static export (`frontend/out`, or `KUBESERVE_DASHBOARD_DIR`) at `/`:
files as they are, `/a/b` from `a/b/index.html` or `a/b.html`, client routes below a page fall
back to that page, other paths get the export's 404 page. Hashed assets under `/_next/static/`
are cached for a year, pages are revalidated on every load (ETag). API, docs, health and
metrics paths are never served here."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_RESERVED = ("api", "docs", "healthz", "readyz", "metrics", "openapi.json", "redoc")

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>KubeServe</title><meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;
line-height:1.5;color:#0f172a}code,pre{background:#f1f5f9;padding:.1rem .3rem;border-radius:4px}
pre{padding:.75rem;overflow:auto}</style></head><body>
<h1>KubeServe is running</h1>
<p>The API answers under <a href="/api/v1/openapi.json"><code>/api/v1</code></a>
(<a href="/docs">interactive docs</a>), but the dashboard has not been built.</p>
<p>Build it once (Node.js 20+), then reload this page:</p>
<pre>cd frontend
npm ci
npm run build      # writes frontend/out, served here</pre>
<p>Or point <code>KUBESERVE_DASHBOARD_DIR</code> at a built copy.</p>
</body></html>"""


def security_headers() -> dict[str, str]:
    return {
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
    }


def content_security_policy(grafana_url: str | None) -> str:
    # Next's static export bootstraps with inline scripts, hence 'unsafe-inline' for scripts;
    # nothing may load from another origin except the configured Grafana, in a frame.
    frame = f"'self' {grafana_url}" if grafana_url else "'self'"
    return (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
        f"connect-src 'self'; frame-src {frame}; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'; object-src 'none'"
    )


class Dashboard:
    def __init__(self, root: Path | None, grafana_url: str | None = None) -> None:
        self.root = root.resolve() if root is not None else None
        self.csp = content_security_policy(grafana_url)

    @property
    def built(self) -> bool:
        return self.root is not None and (self.root / "index.html").is_file()

    def resolve(self, path: str) -> tuple[Path | None, int]:
        """The file for a URL path and the status to answer it with.

        An existing file (or directory index) is served as is. A client route below a page of
        the export (`/models/anything`) gets the nearest page above it (the SPA fallback); a
        path no page covers gets the export's 404 page with a 404, and a missing asset (a name
        with a dot, or anything under `_next/`) a bare 404 - never an HTML page."""
        assert self.root is not None
        relative = path.strip("/")
        if not relative:
            return self.root / "index.html", 200
        for candidate in (
            self.root / relative,
            self.root / relative / "index.html",
            self.root / f"{relative}.html",
        ):
            found = self._inside(candidate)
            if found is not None and found.is_file():
                return found, 200
        segments = relative.split("/")
        if relative.startswith("_next/") or "." in segments[-1]:
            return None, 404
        for depth in range(len(segments) - 1, 0, -1):
            page = self._inside(self.root.joinpath(*segments[:depth], "index.html"))
            if page is not None and page.is_file():
                return page, 200
        not_found = self.root / "404.html"
        return (not_found if not_found.is_file() else None), 404

    def _inside(self, candidate: Path) -> Path | None:
        """`candidate` resolved (symlinks, `..`), or None when that leaves the export."""
        root = self.root
        if root is None:
            return None
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            return None
        return resolved if resolved.is_relative_to(root) else None

    def headers_for(self, file: Path, url_path: str) -> dict[str, str]:
        headers = security_headers()
        immutable = url_path.startswith("/_next/static/")
        headers["cache-control"] = IMMUTABLE if immutable else REVALIDATE
        if file.suffix == ".html":
            headers["content-security-policy"] = self.csp
        return headers


def _etag(file: Path) -> str:
    stat = file.stat()
    digest = hashlib.blake2b(
        f"{stat.st_mtime_ns}-{stat.st_size}".encode(), digest_size=10
    ).hexdigest()
    return f'"{digest}"'


def dashboard_router(dashboard: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def not_found(path: str) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "not_found", "message": f"no such route: /{path}"}},
            status_code=404,
        )

    @router.api_route("/{path:path}", methods=["GET", "HEAD"])
    async def serve(request: Request, path: str) -> Response:
        # Programs get the platform's JSON error; only a browser asking for a page gets HTML.
        wants_html = "text/html" in request.headers.get("accept", "")
        if path.split("/", 1)[0] in _RESERVED:
            return not_found(path)
        if not dashboard.built:
            if path.strip("/") and not wants_html:
                return not_found(path)
            return HTMLResponse(
                NOT_BUILT,
                status_code=200 if not path.strip("/") else 404,
                headers={"cache-control": "no-store", **security_headers()},
            )
        file, status = dashboard.resolve(path)
        if file is None or (status == 404 and not wants_html):
            return not_found(path)
        headers = dashboard.headers_for(file, "/" + path)
        etag = _etag(file)
        headers["etag"] = etag
        if status == 200 and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type == "application/javascript":
            media_type += "; charset=utf-8"
        return FileResponse(file, status_code=status, media_type=media_type, headers=headers)

    return router


def default_dashboard_dir() -> Path | None:
    """`frontend/out` of a source checkout, when the gateway runs from one."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "frontend" / "package.json").is_file():
            return parent / "frontend" / "out"
    return None

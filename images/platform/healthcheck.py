#!/usr/bin/env python3
"""Container HEALTHCHECK of the platform images: GET /healthz on the service's own port
(KUBESERVE_HEALTHCHECK_PORT). The images have no curl; this needs only the standard library."""

import os
import sys
import urllib.request

port = os.environ.get("KUBESERVE_HEALTHCHECK_PORT", "8080")
path = os.environ.get("KUBESERVE_HEALTHCHECK_PATH", "/healthz")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
    print(f"healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)

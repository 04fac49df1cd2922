"""The public route table: which `/api/v1/...` paths go to which upstream, under which path,
with which access rule and body limit. Pure data; the proxy and the OpenAPI merge both read it.

To add a family of routes (predictions, issue 6), append a `Route` in `default_routes()` whose
`upstream` names a resolver registered in `services.proxy.UpstreamResolvers` and, when the path
names a deployment, set `deployment_param` so API keys scoped to other deployments are refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kubeserve_common.caching import Lru

API_PREFIX = "/api/v1"


class Access(enum.Enum):
    PUBLIC = "public"  # no credentials needed; a valid one is still passed on
    AUTHENTICATED = "authenticated"  # a valid access token or API key, else 401


class BodyLimit(enum.Enum):
    DEFAULT = "default"
    UPLOAD = "upload"


@dataclass(frozen=True)
class Route:
    """`pattern` matches the whole public path; its named group `rest` (if any) is appended to
    `target` to make the upstream path. Other named groups are available to checks."""

    name: str
    pattern: str
    upstream: str
    target: str
    methods: frozenset[str] | None = None  # None: every method
    access: Access = Access.AUTHENTICATED
    body_limit: BodyLimit = BodyLimit.DEFAULT
    deployment_param: str | None = None  # a named group holding a deployment id
    # Methods a deployment-scoped API key may use here (None: all). Such keys exist to call a
    # deployment, not to manage it: on the management routes they only read.
    scoped_key_methods: frozenset[str] | None = None
    # Pass Authorization / X-API-Key / Cookie on. Off everywhere: upstreams trust only the
    # principal header, so a credential past the gateway is only something more to leak.
    forward_credentials: bool = False
    in_openapi: bool = True
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def match(self, method: str, path: str) -> RouteMatch | None:
        if self.methods is not None and method not in self.methods:
            return None
        found = self._regex.fullmatch(path)
        if found is None:
            return None
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        return RouteMatch(self, self.target + params.get("rest", ""), params)

    def public_path(self, upstream: str, upstream_path: str) -> str | None:
        """The public path serving `upstream_path` of `upstream` through this route, if any
        (used to publish upstream OpenAPI paths under /api/v1)."""
        if upstream != self.upstream or not upstream_path.startswith(self.target):
            return None
        rest = upstream_path[len(self.target) :]
        if "rest" not in self._regex.groupindex:
            return self._literal_path() if rest == "" else None
        candidate = self._literal_prefix() + rest
        # The candidate must come back through this very route, OpenAPI templates included.
        probe = re.sub(r"\{[^/}]+\}", "x", candidate)
        if self._regex.fullmatch(probe) is None:
            return None
        return candidate

    def _literal_prefix(self) -> str:
        return self.pattern.split("(?P<rest>", 1)[0].replace("\\", "")

    def _literal_path(self) -> str:
        return self.pattern.replace("\\", "")


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    upstream_path: str
    params: dict[str, str]

    def allows_scoped_key(self, method: str) -> bool:
        allowed = self.route.scoped_key_methods
        return self.deployment_id is not None and (allowed is None or method in allowed)

    @property
    def deployment_id(self) -> str | None:
        param = self.route.deployment_param
        return self.params.get(param) if param else None


class RouteTable:
    """First match wins, so specific routes come before the broad ones of the same prefix."""

    _MEMO_SIZE = 4096
    _MEMO_MAX_PATH = 512

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        # (method, path) -> match: a request is matched twice (body limit, then the proxy) and
        # a client calls the same paths again and again. Bounded; a match is never mutated.
        # (The match is boxed in a tuple: "no route" is remembered too.)
        self._memo: Lru[tuple[str, str], tuple[RouteMatch | None]] = Lru(self._MEMO_SIZE)

    def match(self, method: str, path: str) -> RouteMatch | None:
        key = (method, path)
        remembered = self._memo.get(key)
        if remembered is not None:
            return remembered[0]
        found = self._match(method, path)
        if len(path) > self._MEMO_MAX_PATH:
            return found  # anyone may send long paths: 4096 of them must not pin megabytes
        self._memo.put(key, (found,))
        return found

    def _match(self, method: str, path: str) -> RouteMatch | None:
        for route in self.routes:
            found = route.match(method, path)
            if found is not None:
                return found
        return None

    def path_exists(self, path: str) -> bool:
        """Whether any method is routed at `path` (405 versus 404)."""
        return any(r._regex.fullmatch(path) for r in self.routes)

    def public_path(
        self, upstream: str, upstream_path: str, method: str
    ) -> tuple[Route, str] | None:
        """The first route publishing `method upstream_path` of `upstream`, with its path."""
        for route in self.routes:
            if not route.in_openapi or (route.methods and method.upper() not in route.methods):
                continue
            path = route.public_path(upstream, upstream_path)
            if path is not None:
                return route, path
        return None


_SEGMENT = r"[^/]+"
_REST = r"(?P<rest>(?:/.*)?)"  # the prefix itself or anything below it


def default_routes() -> Sequence[Route]:
    public_auth = frozenset({"POST"})
    return (
        Route(
            "auth-public",
            rf"{API_PREFIX}/auth(?P<rest>/(?:register|login|refresh|logout))",
            "auth",
            "/auth",
            methods=public_auth,
            access=Access.PUBLIC,
        ),
        Route(
            "jwks",
            rf"{API_PREFIX}/\.well-known/jwks\.json",
            "auth",
            "/.well-known/jwks.json",
            methods=frozenset({"GET", "HEAD"}),
            access=Access.PUBLIC,
        ),
        Route("auth", rf"{API_PREFIX}/auth(?P<rest>/.*)", "auth", "/auth"),
        Route(
            "model-upload",
            rf"{API_PREFIX}/models(?P<rest>/{_SEGMENT}/versions/?)",
            "registry",
            "/models",
            methods=frozenset({"POST"}),
            body_limit=BodyLimit.UPLOAD,
        ),
        Route("models", rf"{API_PREFIX}/models{_REST}", "registry", "/models"),
        Route(
            "builds",
            rf"{API_PREFIX}/builds(?P<rest>/{_SEGMENT})",
            "builder",
            "/builds",
            methods=frozenset({"GET", "HEAD"}),
        ),
        Route(
            "deployment",
            rf"{API_PREFIX}/deployments(?P<rest>/(?P<deployment_id>{_SEGMENT})(?:/.*)?)",
            "deployer",
            "/deployments",
            deployment_param="deployment_id",
            scoped_key_methods=frozenset({"GET", "HEAD"}),
        ),
        Route("deployments", rf"{API_PREFIX}/deployments(?P<rest>/?)", "deployer", "/deployments"),
        Route(
            "usage",
            rf"{API_PREFIX}/usage(?P<rest>/?)",
            "deployer",
            "/usage",
            methods=frozenset({"GET", "HEAD"}),
        ),
        Route(
            "cold-start",
            rf"{API_PREFIX}/cold-start(?P<rest>/?)",
            "deployer",
            "/cold-start",
            methods=frozenset({"GET", "HEAD"}),
        ),
        # Predictions go to a ready replica of the deployment (the "runtime" resolver):
        # /predict/{id} is the simple JSON API, /predict/{id}/v2/... the Open Inference Protocol,
        # /predict/{id}/v1/... KServe's V1 protocol (/v1/models/{name}:predict). The
        # per-deployment Ingress (charts/model-serving) serves the same three.
        Route(
            "predict-v1",
            rf"{API_PREFIX}/predict/(?P<deployment_id>{_SEGMENT})(?P<rest>/v1(?:/.*)?)",
            "runtime",
            "",
            methods=frozenset({"GET", "HEAD", "POST"}),
            deployment_param="deployment_id",
            in_openapi=False,
        ),
        Route(
            "predict-v2",
            rf"{API_PREFIX}/predict/(?P<deployment_id>{_SEGMENT})(?P<rest>/v2(?:/.*)?)",
            "runtime",
            "",
            methods=frozenset({"GET", "HEAD", "POST"}),
            deployment_param="deployment_id",
            in_openapi=False,
        ),
        # GET of the deployment's root is KServe V1's server liveness (`GET /` of the runtime).
        Route(
            "predict-live",
            rf"{API_PREFIX}/predict/(?P<deployment_id>{_SEGMENT})/?",
            "runtime",
            "/",
            methods=frozenset({"GET", "HEAD"}),
            deployment_param="deployment_id",
            in_openapi=False,
        ),
        Route(
            "predict",
            rf"{API_PREFIX}/predict/(?P<deployment_id>{_SEGMENT})/?",
            "runtime",
            "/predict",
            methods=frozenset({"POST"}),
            deployment_param="deployment_id",
            in_openapi=False,
        ),
    )

"""FastAPI plumbing shared by every service: app factory, errors, middleware, health, metrics."""

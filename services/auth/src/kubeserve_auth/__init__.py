"""KubeServe auth: users, passwords, JWTs, API keys and the JWKS."""

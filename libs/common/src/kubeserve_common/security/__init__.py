"""Security helpers. `tokens` and `passwords` are the only modules that import jose / argon2."""

"""HTTP adapters of the registry: parse, call one service method, map the result."""

"""The `local` runtime backend (the embedded default): replicas as contained local processes.
See `backend` for how it converges and the other modules for one job each."""

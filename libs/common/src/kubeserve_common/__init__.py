"""Shared platform code for every KubeServe service: settings, events, messaging, database, web."""

"""The services' uvicorn server (kubeserve_common.web.server): it serves, sends a Date header,
and a shutdown asked for while it sleeps ends it at once (its tick is set far longer than the
test here, so only the wake can end it in time). A real server on a free port."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn
from fastapi import FastAPI
from kubeserve_common.net import free_port
from kubeserve_common.web.server import Server


class SleepyServer(Server):
    TICK = 3600.0


async def test_serves_then_stops_as_soon_as_asked() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    port = free_port()
    server = SleepyServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/ping")
        assert response.json() == {"pong": "yes"}
        assert response.headers["date"].endswith("GMT")
        await asyncio.sleep(0.05)  # the main loop is asleep in its (hour-long) tick
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

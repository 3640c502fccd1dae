"""Helpers shared by the serving tests."""

from __future__ import annotations

import asyncio

import httpx

MECHANICS_QUESTION = "A lever rotates about its fulcrum. What torque does a 200 N load exert 1 m from it?"


def run_with_client(app, scenario):
    """Run `await scenario(client)` against `app` in-process, inside the application's lifespan."""

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
                return await scenario(client)

    return asyncio.run(main())

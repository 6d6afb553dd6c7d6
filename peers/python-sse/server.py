"""The digits stream written the idiomatic way with sse-starlette's EventSourceResponse on
Starlette under uvicorn: an async generator per stream, a dict per event, sse-starlette's own
ping task for keep-alive. It exists only to be measured side by side with sse-digits under
the same load test.

Usage: `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt`, then
`.venv/bin/python server.py [BIND] [PORT]` (default 127.0.0.1 8084, one process, one event
loop); `GET /digits` takes `interval_ms`, `count` and `Last-Event-ID` like sse-digits.
"""

import asyncio
import sys

import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.routing import Route


def number(text, default):
    """A non-negative integer from a query value or header, else the default."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        return default
    return value if value >= 0 else default


async def digits(request):
    interval = max(number(request.query_params.get("interval_ms"), 1000), 1) / 1000
    count = number(request.query_params.get("count"), 4000)
    seen = number(request.headers.get("last-event-id"), None)
    first = 1 if seen is None else seen + 1

    async def events():
        yield {"retry": 3000}
        loop = asyncio.get_running_loop()
        due = loop.time()
        for n in range(first, count + 1):
            # Sleep to a fixed schedule (like a tokio interval) rather than a fixed pause, so
            # a busy loop does not quietly lower the event rate.
            await asyncio.sleep(max(due - loop.time(), 0))
            due += interval
            if n == count:
                yield {"id": str(n), "event": "bye", "data": "bye-bye"}
            else:
                yield {"id": str(n), "data": str(n)}

    return EventSourceResponse(events(), ping=15)


app = Starlette(routes=[Route("/digits", digits)])

if __name__ == "__main__":
    bind = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8084
    uvicorn.run(app, host=bind, port=port, log_level="warning", backlog=4096)

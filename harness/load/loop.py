"""The event loop the client runs on: uvloop where it is installed, with the garbage collector
kept out of the way while it runs."""

from __future__ import annotations

import asyncio
import gc


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed, else asyncio's. On uvloop the read callback
    runs from C: StreamSession spends 15-30% less CPU per chunk (benchmarks/README.md)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_fast(coro):
    """asyncio.run(coro) on new_event_loop(), with every object that exists already moved out
    of the garbage collector's way: a full collection over a process that imported pandas
    stops the loop for ~50 ms, and every chunk read in that time would be stamped late."""
    gc.freeze()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(coro)
    finally:
        gc.unfreeze()

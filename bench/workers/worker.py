"""chronos-bench --sdk python|python-sync: one Python process of Chronos
workers (``work``) or one producer (``create``), written with the Python
SDK, speaking the bench's line protocol (bench/src/sdk.rs)::

    python worker.py work --url U --key K --handler H --workers W \\
        --concurrency C --every E --total T [--sync]
        W workers of C slots with a no-op handler for H: ``async def`` on
        the worker's event loop, or with --sync a plain ``def`` on the
        SDK's thread pool. Prints ``ready``, waits for ``go`` on stdin,
        starts them, prints ``connected``; ``ran N`` at every E-th run and
        the T-th; on ``stop`` (or the end of stdin) stops them gracefully
        and prints ``stopped N``.
    python worker.py create --url U --key K --handler H --jobs N \\
        --batch B [--sync]
        Prints ``ready``, waits for ``go``, creates N jobs with
        ``AsyncClient.create_jobs`` (--sync: ``Client.create_jobs``), B per
        call, one call at a time, and prints ``created N``.

Run it with the virtualenv bench/sdk-setup builds (bench/.sdk/venv), which
holds a release build of the SDK.
"""

import argparse
import asyncio
import itertools
import sys
import threading

from chronos import AsyncClient, Client, Worker

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def expect(word: str, line: str) -> None:
    if line.strip() != word:
        got = f"`{line.strip()}`" if line else "the end of stdin"
        raise SystemExit(f"worker.py: expected `{word}`, got {got}")


async def command() -> str:
    """The bench's next command ('' once stdin ends), without blocking the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def work(a: argparse.Namespace) -> None:
    # next() on itertools.count is atomic under the GIL: the sync handlers
    # run on several threads.
    counter = itertools.count(1)

    def seen() -> None:
        n = next(counter)
        if n % a.every == 0 or n == a.total:
            say(f"ran {n}")

    workers = []
    for i in range(a.workers):
        worker = Worker(a.url, a.key, a.concurrency,
                        worker_id=f"bench-python-{a.handler}-{i}", handle_signals=False)
        if a.sync:
            @worker.handle(a.handler)
            def noop(job: object) -> None:
                seen()
        else:
            @worker.handle(a.handler)
            async def async_noop(job: object) -> None:
                seen()
        workers.append(worker)
    say("ready")
    expect("go", await command())
    tasks = [asyncio.create_task(w.run_async()) for w in workers]
    loop = asyncio.get_running_loop()
    for w in workers:
        if not await loop.run_in_executor(None, w.wait_connected, 60):
            raise SystemExit("worker.py: a worker did not connect within 60 s")
    say("connected")
    while True:
        line = await command()
        if line == "" or line.strip() == "stop":
            break
    for w in workers:
        w.stop()
    await asyncio.gather(*tasks)
    say(f"stopped {next(counter) - 1}")


def refused(items: list) -> None:
    for item in items:
        if "error" in item:
            raise SystemExit(f"worker.py: the server refused a bench job: {item['error']}")


def create_sync(a: argparse.Namespace) -> None:
    client = Client(a.url, a.key)
    say("ready")
    expect("go", sys.stdin.readline())
    for start in range(0, a.jobs, a.batch):
        n = min(a.batch, a.jobs - start)
        refused(client.create_jobs([{"name": "bench", "handler": a.handler} for _ in range(n)]))
    say(f"created {a.jobs}")


async def create_async(a: argparse.Namespace) -> None:
    client = AsyncClient(a.url, a.key)
    say("ready")
    expect("go", await command())
    for start in range(0, a.jobs, a.batch):
        n = min(a.batch, a.jobs - start)
        refused(await client.create_jobs([{"name": "bench", "handler": a.handler} for _ in range(n)]))
    say(f"created {a.jobs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    for name, ints in (("work", ("workers", "concurrency", "every", "total")), ("create", ("jobs", "batch"))):
        role = roles.add_parser(name)
        for flag in ("url", "key", "handler"):
            role.add_argument(f"--{flag}", required=True)
        for flag in ints:
            role.add_argument(f"--{flag}", type=int, required=True)
        role.add_argument("--sync", action="store_true")
    a = parser.parse_args()
    if a.role == "work":
        asyncio.run(work(a))
    elif a.sync:
        create_sync(a)
    else:
        asyncio.run(create_async(a))


if __name__ == "__main__":
    main()

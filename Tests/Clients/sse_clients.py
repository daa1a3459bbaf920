#!/usr/bin/python3
"""Many server-sent-event clients at once, on plain asyncio sockets.

Opens --clients connections to --url (HTTP/1.1 GET, Accept:
text/event-stream), reads their events, and prints one JSON line: how many
clients connected, how many got each count of events, and the slowest first
event. With --ready-file, writes that file once every client has its first
event (a test then measures something else meanwhile); with --hang-up,
closes every connection abruptly right after that instead of reading on.

Debian's python3 alone; no package needed.
"""
import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def client(host, port, path, hang_up, ready, results, headers=""):
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as error:
        results.append({"error": str(error)})
        ready.append(None)
        return
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n{headers}\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    chunked = b"transfer-encoding: chunked" in head.lower()
    status = int(head.split(b" ", 2)[1])
    events, first, last, heartbeats, text = [], None, None, 0, b""
    try:
        while True:
            if chunked:
                size_line = await reader.readline()
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    break
                data = await reader.readexactly(size)
                await reader.readexactly(2)
            else:
                data = await reader.read(65536)
                if not data:
                    break
            text += data
            while b"\n\n" in text:
                block, text = text.split(b"\n\n", 1)
                if block.startswith(b":"):
                    heartbeats += 1
                    continue
                fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
                events.append((fields.get(b"id", b"").decode(), fields.get(b"data", b"").decode()))
                last = time.monotonic() - started
                if first is None:
                    first = time.monotonic() - started
                    ready.append(first)
                    if hang_up:
                        writer.transport.abort()
                        results.append({"status": status, "events": len(events), "first": first, "heartbeats": heartbeats})
                        return
    except (asyncio.IncompleteReadError, ConnectionError) as error:
        results.append({"status": status, "events": len(events), "first": first, "heartbeats": heartbeats, "error": str(error)})
        return
    finally:
        if first is None:
            ready.append(None)
    writer.close()
    ids = [int(event[0]) for event in events if event[0].isdigit()]
    results.append({"status": status, "events": len(events), "first": first, "last": last, "heartbeats": heartbeats,
                    "ordered": ids == sorted(ids) and len(ids) == len(set(ids)), "first_id": ids[0] if ids else None})


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--ready-file")
    parser.add_argument("--hang-up", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="an extra request header, Name: value")
    args = parser.parse_args()
    url = urlsplit(args.url)
    path = url.path + ("?" + url.query if url.query else "")
    results, ready = [], []
    tasks = []
    for _ in range(args.clients):
        headers = "".join(header + "\r\n" for header in args.header)
        tasks.append(asyncio.create_task(client(url.hostname, url.port, path, args.hang_up, ready, results, headers)))
        await asyncio.sleep(0)  # spread the connects a little
    if args.ready_file:
        while len(ready) < args.clients:
            await asyncio.sleep(0.05)
        with open(args.ready_file, "w") as f:
            f.write("ready\n")
    await asyncio.gather(*tasks)
    counts = {}
    for result in results:
        key = str(result.get("events", "error"))
        counts[key] = counts.get(key, 0) + 1
    firsts = [r["first"] for r in results if r.get("first") is not None]
    print(json.dumps({
        "clients": len(results), "events": counts, "errors": [r["error"] for r in results if "error" in r][:5],
        "statuses": sorted({r.get("status", 0) for r in results}),
        "slowest_first": max(firsts) if firsts else None,
        "earliest_last": min((r["last"] for r in results if r.get("last") is not None), default=None),
        "first_ids": sorted({r.get("first_id") for r in results if r.get("first_id") is not None}),
        "unordered": sum(1 for r in results if r.get("ordered") is False),
        "heartbeats": sum(r.get("heartbeats", 0) for r in results),
    }), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)

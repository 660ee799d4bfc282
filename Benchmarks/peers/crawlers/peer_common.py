"""What the crawlers of crawl-peers.sh share: the URL normalization every
one of them applies to the links it finds, and the command line of the
timed peers (gevent_crawl.py, scrapy_crawl.py).

Normalized: scheme and host in lower case, the default port dropped, the
fragment and an empty query ("?") dropped, "/" for an empty path; None
for anything but an absolute http(s) URL with a host.
"""
import argparse
from urllib.parse import urlsplit, urlunsplit


def normalize(url):
    try:
        s = urlsplit(url)
        port = s.port
    except ValueError:
        return None
    scheme = s.scheme.lower()
    if scheme not in ("http", "https") or not s.hostname:
        return None
    netloc = s.hostname.lower()
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, s.path or "/", s.query, ""))


def peer_arguments():
    """START OUT [--concurrency N], as crawl-peers.sh runs every peer."""
    ap = argparse.ArgumentParser()
    ap.add_argument("start")
    ap.add_argument("out")
    ap.add_argument("--concurrency", type=int, default=50)
    return ap.parse_args()

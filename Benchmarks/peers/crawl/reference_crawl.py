"""The reference crawler for the crawl comparison: careful and plain.
Breadth-first from START over the same host, links from <a href> (and
<base href>) through Python's html.parser, resolved with urljoin,
fragments dropped, default ports removed; one GET per URL. With
--gevent it does the same with 100 greenlets (gevent, monkey-patched
urllib): the gevent crawler the comparison times.

Prints one URL per line (every URL fetched), then "seconds S" on stderr.

    python3 reference_crawl.py START [--gevent]
"""
import sys

GEVENT = "--gevent" in sys.argv
if GEVENT:
    from gevent import monkey
    monkey.patch_all()
    import gevent.pool

import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.base = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"].strip())
        elif tag == "base" and attrs.get("href") and self.base is None:
            self.base = attrs["href"].strip()


def normalize(url):
    s = urlsplit(url)
    if s.scheme not in ("http", "https") or not s.hostname:
        return None
    netloc = s.hostname.lower()
    if s.port and not ((s.scheme == "http" and s.port == 80) or (s.scheme == "https" and s.port == 443)):
        netloc += f":{s.port}"
    return urlunsplit((s.scheme, netloc, s.path or "/", s.query, ""))


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, ctype, r.read()
    except urllib.error.HTTPError as e:
        return e.code, "", b""
    except Exception:
        return None, "", b""


def links_of(url, ctype, body):
    if "text/html" not in ctype:
        return []
    p = Links()
    p.feed(body.decode("utf-8", "replace"))
    base = urljoin(url, p.base) if p.base else url
    return [u for u in (normalize(urljoin(base, h)) for h in p.hrefs) if u]


def main():
    start = normalize(sys.argv[1])
    host = urlsplit(start).netloc
    seen, frontier, fetched = {start}, [start], []
    t0 = time.monotonic()
    pool = gevent.pool.Pool(100) if GEVENT else None
    while frontier:
        batch, frontier = frontier, []
        results = pool.map(fetch, batch) if pool else [fetch(u) for u in batch]
        for url, (status, ctype, body) in zip(batch, results):
            fetched.append(url)
            for link in links_of(url, ctype, body):
                if urlsplit(link).netloc == host and link not in seen:
                    seen.add(link)
                    frontier.append(link)
    for u in fetched:
        print(u)
    print(f"seconds {time.monotonic() - t0:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The gevent peer of crawl-peers.sh: a crawler as a typical gevent user
writes one. gevent.monkey.patch_all(), then requests with one Session
(keep-alive through urllib3's pool, sized to the concurrency so that no
connection is thrown away; gzip asked for and decoded by requests),
because requests is what most gevent crawlers in the wild use. N worker
greenlets take URLs from a gevent JoinableQueue. Links: <a href> found
by the standard library's html.parser on response.text (and the first
<base href>), resolved with urljoin against the final URL, same host
only, normalized (scheme and host lower case, default port, fragment and
an empty query dropped, "/" for an empty path), each URL fetched once.
Responses that are not text/html, or 400 and up, are fetched but not
parsed. robots.txt is read once, with urllib.robotparser, as our crawler
and Scrapy read it.

Writes every URL it fetched, one a line, to OUT; a summary on stderr.

    python gevent_crawl.py START OUT [--concurrency N]
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from urllib.parse import urljoin, urlsplit  # noqa: E402
from urllib.robotparser import RobotFileParser  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.queue import JoinableQueue  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

from peer_common import normalize, peer_arguments  # noqa: E402

USER_AGENT = "gevent-crawl/1.0"


class LinkParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs = []
        self.base = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value is not None:
                    self.hrefs.append(value)
                    break
        elif tag == "base" and self.base is None:
            for name, value in attrs:
                if name == "href" and value is not None:
                    self.base = value
                    break


def main():
    args = peer_arguments()

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=args.concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    start = normalize(args.start)
    host = urlsplit(start).hostname
    s = urlsplit(start)
    robots = RobotFileParser()
    try:
        r = session.get(f"{s.scheme}://{s.netloc}/robots.txt", timeout=30)
        robots.parse(r.text.splitlines() if r.status_code == 200 else [])
    except requests.RequestException:
        robots.parse([])

    seen = {start}
    fetched = []
    errors = 0
    queue = JoinableQueue()
    queue.put(start)

    def crawl(url):
        nonlocal errors
        if not robots.can_fetch(USER_AGENT, url):
            return
        fetched.append(url)
        try:
            response = session.get(url, timeout=30)
        except requests.RequestException as e:
            errors += 1
            print(f"gevent_crawl: {url}: {e}", file=sys.stderr)
            return
        if response.status_code >= 400:
            errors += 1
            return
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media != "text/html":
            response.content  # read, not parsed
            return
        parser = LinkParser()
        parser.feed(response.text)
        parser.close()
        base = urljoin(response.url, parser.base.strip()) if parser.base else response.url
        for href in parser.hrefs:
            try:
                link = normalize(urljoin(base, href.strip()))
            except ValueError:
                continue
            if link and link not in seen and urlsplit(link).hostname == host:
                seen.add(link)
                queue.put(link)

    def worker():
        while True:
            url = queue.get()
            try:
                crawl(url)
            except Exception as e:  # one bad page must not stop the crawl
                print(f"gevent_crawl: {url}: {e!r}", file=sys.stderr)
            finally:
                queue.task_done()

    began = time.monotonic()
    workers = [gevent.spawn(worker) for _ in range(args.concurrency)]
    queue.join()
    gevent.killall(workers)
    seconds = time.monotonic() - began
    with open(args.out, "w") as f:
        f.writelines(u + "\n" for u in fetched)
    print(f"gevent_crawl: {len(fetched)} URLs, {errors} errors, {seconds:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

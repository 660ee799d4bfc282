"""The Scrapy peer of crawl-peers.sh: the usual CrawlSpider, one Rule
with a LinkExtractor that follows <a href> on the start URL's host, run
by CrawlerProcess. Settings: CONCURRENT_REQUESTS and
CONCURRENT_REQUESTS_PER_DOMAIN = N, no download delay, no AutoThrottle,
no HTTP cache, ROBOTSTXT_OBEY on (our crawler reads robots.txt too),
LOG_LEVEL ERROR, the telnet console and the remote control extension
off (each would open a port); the
rest are Scrapy's defaults (its HttpCompressionMiddleware asks for gzip
and decodes it; its duplicate filter fetches each URL once).
deny_extensions=[]: the LinkExtractor skips links to .py, .css, .zip
and other such files by default, and the other crawlers fetch every
<a href> target (the python docs link a .py file).

Scrapy parses only HtmlResponse (Content-Type text/html) with status
200-299, as the others parse only text/html below 400.

Writes every URL it requested from the site, one a line, to OUT (from
the request_reached_downloader signal: robots.txt and redirect hops
left out, as our crawler's output leaves them out); a summary on stderr.
Scrapy sends its start URL without the duplicate filter, so when a page
links back to it, it is fetched a second time (Scrapy's usual behaviour,
kept: it appears twice in OUT).

    python scrapy_crawl.py START OUT [--concurrency N]
"""
import sys
import time
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule

from peer_common import peer_arguments


class DocsSpider(CrawlSpider):
    name = "docs"

    def __init__(self, start, *args, **kwargs):
        parts = urlsplit(start)
        self.start_urls = [start]
        # OffsiteMiddleware matches host names (it ignores a port), the
        # LinkExtractor's allow_domains the whole netloc, port included.
        self.allowed_domains = [parts.hostname]
        self.rules = (
            Rule(LinkExtractor(allow_domains=[parts.netloc], tags=("a",), attrs=("href",), deny_extensions=[]),
                 follow=True),
        )
        super().__init__(*args, **kwargs)


def main():
    args = peer_arguments()

    process = CrawlerProcess(settings={
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "DOWNLOAD_TIMEOUT": 30,
    })
    fetched = []
    statuses = {}

    def reached(request, spider):
        meta = request.meta
        if meta.get("dont_obey_robotstxt") or "redirect_urls" in meta:
            return
        fetched.append(request.url)

    def received(response, request, spider):
        statuses[response.status] = statuses.get(response.status, 0) + 1

    crawler = process.create_crawler(DocsSpider)
    crawler.signals.connect(reached, signal=signals.request_reached_downloader)
    crawler.signals.connect(received, signal=signals.response_received)
    began = time.monotonic()
    process.crawl(crawler, start=args.start)
    process.start()
    seconds = time.monotonic() - began
    with open(args.out, "w") as f:
        f.writelines(u + "\n" for u in fetched)
    print(f"scrapy_crawl: {len(fetched)} requests, {len(set(fetched))} URLs, statuses {statuses}, "
          f"{seconds:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The reference crawler of crawl-peers.sh: slow, sequential and careful.
Its URL set is what every timed crawler must fetch.

One request at a time (urllib from the standard library, redirects
followed), breadth first from START. A response is parsed only when its
status is below 400 and its Content-Type is text/html. Pages are parsed
with html5lib, the HTML5 specification's parsing algorithm written in
Python: a parser none of the timed crawlers uses (gevent's uses
html.parser, Scrapy's lxml, ours gumbo or libxml2), so that a parser's
quirk shows up as a difference instead of hiding in the reference.

Links: the href of every <a> and <area>, the src of every <iframe> and
<frame> (HTML namespace), resolved against the page's final URL (after
redirects) or the document's first <base href>, leading and trailing
ASCII whitespace stripped (as HTML says), http(s) only, on START's host
(host name only, as the crawlers compare it), normalized: scheme and
host in lower case, the default port dropped, the fragment dropped, "/"
for an empty path, an empty query ("?") dropped. Each URL is fetched
once, and each page's links are kept; two walks over that graph give
two URL sets:

  A_OUT     the <a href> rule of the gevent and Scrapy peers: every
            <a href>, rel=nofollow and robots meta tags ignored;
  OURS_OUT  our crawler's rule: <a href>, <area href>, <iframe src>,
            <frame src>, but no rel=nofollow link, and no link at all
            from a page whose <meta name=robots> says nofollow or none.

Each is written one URL a line, in breadth-first order; a summary goes
to stderr (with how many links on the host the two rules treat apart).

    python reference_crawl.py START A_OUT OURS_OUT
"""
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from urllib.parse import urljoin, urlsplit

import html5lib

from peer_common import normalize

HTML_SPACE = " \t\n\f\r"


def fetch(url):
    """(status, media type, body, final URL); status None on a failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "crawl-peers-reference"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            media = r.headers.get_content_type()
            return r.status, media, r.read(), r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, "", b"", url
    except (OSError, ValueError) as e:
        print(f"reference: {url}: {e}", file=sys.stderr)
        return None, "", b"", url


def page_links(body, page_url):
    """(meta_nofollow, [(url, kind, nofollow)]): every link of the page,
    kind "a" for <a href>, "other" for <area href>, <iframe src> and
    <frame src>; nofollow when the element's rel holds nofollow."""
    # Bytes in, so that html5lib sniffs the encoding (<meta charset>) itself.
    doc = html5lib.parse(body, treebuilder="etree", namespaceHTMLElements=False)
    base = page_url
    for element in doc.iter("base"):
        href = element.get("href")
        if href is not None:
            base = urljoin(page_url, href.strip(HTML_SPACE))
            break
    meta_nofollow = False
    for element in doc.iter("meta"):
        if (element.get("name") or "").strip(HTML_SPACE).lower() == "robots":
            words = {w.strip(HTML_SPACE).lower() for w in (element.get("content") or "").split(",")}
            meta_nofollow = meta_nofollow or bool(words & {"nofollow", "none"})
    found = []
    for element in doc.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        attr = {"a": "href", "area": "href", "iframe": "src", "frame": "src"}.get(tag)
        value = element.get(attr) if attr else None
        if value is None:
            continue
        rel = (element.get("rel") or "").lower().split()
        try:
            url = normalize(urljoin(base, value.strip(HTML_SPACE)))
        except ValueError:
            continue
        if url:
            found.append((url, "a" if tag == "a" else "other", "nofollow" in rel))
    return meta_nofollow, found


def reachable(first, graph, follows):
    """URLs reachable from first over the edges follows(meta_nofollow, kind,
    nofollow) accepts, breadth first."""
    seen, queue, order = {first}, deque([first]), []
    while queue:
        url = queue.popleft()
        order.append(url)
        meta_nofollow, edges = graph.get(url, (False, []))
        for link, kind, nofollow in edges:
            if link not in seen and follows(meta_nofollow, kind, nofollow):
                seen.add(link)
                queue.append(link)
    return order


def main():
    start, out_a, out_ours = sys.argv[1], sys.argv[2], sys.argv[3]
    first = normalize(start)
    host = urlsplit(first).hostname
    # Every URL on the host that any of the rules below could reach, each
    # fetched once; the graph keeps each page's links for the two walks.
    seen, queue, graph, failed = {first}, deque([first]), {}, []
    began = time.monotonic()
    while queue:
        url = queue.popleft()
        status, media, body, final = fetch(url)
        if status is None or status >= 400:
            failed.append(f"{url} ({status or 'no response'})")
            continue
        if media != "text/html":
            continue
        meta_nofollow, edges = page_links(body, final)
        edges = [e for e in edges if urlsplit(e[0]).hostname == host]
        graph[url] = (meta_nofollow, edges)
        for link, _, _ in edges:
            if link not in seen:
                seen.add(link)
                queue.append(link)
    # The peers' rule: every <a href>, rel and robots meta tags ignored
    # (neither html.parser crawlers nor Scrapy's LinkExtractor heed them).
    by_a = reachable(first, graph, lambda meta, kind, nofollow: kind == "a")
    # Ours: <a href>, <area href>, <iframe src>, <frame src>, but no
    # rel=nofollow link and nothing from a page whose robots meta says
    # nofollow or none.
    by_ours = reachable(first, graph, lambda meta, kind, nofollow: not meta and not nofollow)
    for path, urls in ((out_a, by_a), (out_ours, by_ours)):
        with open(path, "w") as f:
            f.writelines(u + "\n" for u in urls)
    pages = sum(1 for u in by_a if u in graph)
    nofollow_pages = sum(1 for u in graph if graph[u][0])
    other = sum(1 for _, edges in graph.values() for _, kind, _ in edges if kind != "a")
    nofollow_links = sum(1 for _, edges in graph.values() for _, _, n in edges if n)
    print(f"reference: {len(seen)} URLs fetched in {time.monotonic() - began:.1f} s, {len(failed)} failed "
          f"({', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''}); <a href> rule: {len(by_a)} URLs, "
          f"{pages} of them HTML pages parsed; our rule: {len(by_ours)} URLs; on this host: {other} "
          f"area/iframe/frame links, {nofollow_links} rel=nofollow links, {nofollow_pages} pages with a "
          f"robots nofollow meta tag", file=sys.stderr)


if __name__ == "__main__":
    main()

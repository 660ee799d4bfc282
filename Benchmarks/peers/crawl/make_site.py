"""Writes a static site of N generated pages for the crawl comparison:
pages in a few directories, linking to each other with absolute paths,
relative paths (../), fragments, a query, a <base href> page, links to
another host and to missing pages. Every page is reachable from /.

    python3 make_site.py DIR [N]
"""
import os
import random
import sys


def main():
    root = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    rng = random.Random(7)
    dirs = ["a", "b", "c/d"]
    paths = [f"/{dirs[i % len(dirs)]}/p{i}.html" for i in range(n)]

    def rel(from_path, to_path):
        return os.path.relpath(to_path, os.path.dirname(from_path))

    for i, path in enumerate(paths):
        links = [paths[(i + 1) % n]]                                  # a chain through all
        links.append(rel(path, paths[rng.randrange(n)]))             # relative, maybe ../
        links.append(paths[rng.randrange(n)] + "#section")           # a fragment
        links.append(paths[rng.randrange(n)] + "?from=" + str(i))    # a query: another URL
        if i % 25 == 0:
            links.append(f"/missing/{i}.html")                       # a 404
        if i % 40 == 0:
            links.append("http://other.invalid/x.html")              # another host
        body = "".join(f'<li><a href="{h}">{h}</a></li>' for h in links)
        html = f"<!doctype html><html><head><title>{path}</title></head><body><ul>{body}</ul></body></html>"
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(html)
    os.makedirs(os.path.join(root, "base"), exist_ok=True)
    with open(os.path.join(root, "base", "index.html"), "w") as f:
        f.write('<html><head><base href="/a/"></head><body><a href="p3.html">three</a></body></html>')
    index = "".join(f'<a href="{p}">{p}</a> ' for p in paths[:20]) + '<a href="/base/">base</a>'
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write(f"<html><body>{index}</body></html>")


if __name__ == "__main__":
    main()

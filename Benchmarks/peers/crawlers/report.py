"""The tables of crawl-peers.sh, from the files of its work folder:

  reference.a.txt, reference.ours.txt   the reference crawler's two sets
  ours.R.jsonl                          our crawler's JSON lines, round R
  gevent.R.urls, scrapy.R.urls          the peers' fetched URLs, round R
  timings.tsv                           name, round, wall, user, sys,
                                        nginx CPU, other processes' CPU
                                        (seconds), exit status

Every crawler's URLs are normalized the same way (scheme and host lower
case, default port, fragment and empty query dropped, "/" for an empty
path) and compared, round by round, with the reference's set for its
rule: ours with reference.ours.txt, the peers with reference.a.txt.

Exit status: 0 when every round of every crawler fetched exactly its
reference set; 1 when ours did not (whatever the peers did); 3 when only
a peer did not (its time is then not comparable).

    python report.py WORKDIR ROUNDS
"""
import json
import os
import statistics
import sys
from urllib.parse import urlsplit, urlunsplit

NAMES = ["ours", "gevent", "scrapy"]
TARGETS = {"gevent": 1 / 10, "scrapy": 1 / 20}  # ours / peer, wall time


def normalize(url):
    try:
        s = urlsplit(url.strip())
        port = s.port
    except ValueError:
        return url.strip()
    scheme = s.scheme.lower()
    netloc = (s.hostname or "").lower()
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, s.path or "/", s.query, ""))


def read_urls(path):
    with open(path) as f:
        return [normalize(line) for line in f if line.strip()]


def read_ours(path):
    """(URLs, statuses or errors) of our crawler's JSON lines."""
    urls, outcomes = [], {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            urls.append(normalize(record["url"]))
            key = record.get("error") or record.get("status")
            outcomes[key] = outcomes.get(key, 0) + 1
    return urls, outcomes


def table(header, rows, right_from=1):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i < right_from else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main():
    work, rounds = sys.argv[1], int(sys.argv[2])
    ref = {"a": read_urls(f"{work}/reference.a.txt"), "ours": read_urls(f"{work}/reference.ours.txt")}
    ref_set = {k: set(v) for k, v in ref.items()}

    # --- page sets ---------------------------------------------------------
    print(f"Page sets (normalized URLs; robots.txt and redirect hops not counted): the reference "
          f"fetched {len(ref_set['a'])} URLs by the <a href> rule, {len(ref_set['ours'])} by ours")
    only_a, only_ours = sorted(ref_set["a"] - ref_set["ours"]), sorted(ref_set["ours"] - ref_set["a"])
    if only_a or only_ours:
        print(f"  intended difference between the rules: {len(only_ours)} URLs only ours reaches "
              f"(area/iframe/frame) {only_ours[:3]}, {len(only_a)} only the <a href> rule reaches "
              f"(nofollow) {only_a[:3]}")
    else:
        print("  (on this site the two rules reach the same URLs: no area/iframe/frame target or "
              "nofollow link changes the set)")
    rows, notes, status = [], [], 0
    outcomes_ours = {}
    for name in NAMES:
        rule = "ours" if name == "ours" else "a"
        want = ref_set[rule]
        fetches, uniques, missing, extra, bad_rounds = [], [], set(), set(), []
        for r in range(1, rounds + 1):
            if name == "ours":
                urls, outcomes = read_ours(f"{work}/ours.{r}.jsonl")
                if r == 1:
                    outcomes_ours = outcomes
            else:
                urls = read_urls(f"{work}/{name}.{r}.urls")
            got = set(urls)
            fetches.append(len(urls))
            uniques.append(len(got))
            if got != want:
                bad_rounds.append(r)
                missing |= want - got
                extra |= got - want
        same = "yes" if not bad_rounds else f"NO (rounds {', '.join(map(str, bad_rounds))})"
        span = lambda xs: str(xs[0]) if min(xs) == max(xs) else f"{min(xs)}-{max(xs)}"
        rows.append([name, f"reference.{'ours' if rule == 'ours' else 'a'}", span(fetches), span(uniques),
                     len(missing), len(extra), same])
        if bad_rounds:
            notes.append(f"{name}: missing {sorted(missing)[:5]}{' ...' if len(missing) > 5 else ''}; "
                         f"extra {sorted(extra)[:5]}{' ...' if len(extra) > 5 else ''}")
            status = 1 if name == "ours" else (status or 3)
        dupes = max(f - u for f, u in zip(fetches, uniques))
        if dupes:
            notes.append(f"{name}: up to {dupes} URL(s) fetched twice in a round")
    table(["crawler", "compared with", "fetches", "URLs", "missing", "extra", "same set, every round"], rows)
    print(f"ours, round 1, by status or error: {dict(sorted(outcomes_ours.items(), key=lambda kv: str(kv[0])))}")
    for n in notes:
        print("  " + n)

    # --- times -------------------------------------------------------------
    runs = {n: [] for n in NAMES}
    with open(f"{work}/timings.tsv") as f:
        for line in f:
            name, r, wall, user, sys_, server, others, rc = line.split()
            runs[name].append((int(r), float(wall), float(user), float(sys_), float(server), float(others)))
    med = {}
    for n in NAMES:
        xs = sorted(runs[n])
        med[n] = {k: statistics.median(x[i] for x in xs) for i, k in
                  ((1, "wall"), (2, "user"), (3, "sys"), (4, "server"), (5, "others"))}
        med[n]["cpu"] = statistics.median(x[2] + x[3] for x in xs)
        med[n]["rounds"] = ", ".join(f"{x[1]:.2f}" for x in xs)
    print()
    print(f"Times, median of {rounds} round(s) in rotating order: wall = the crawler process from "
          f"start to exit; CPU = its user + sys (children included); nginx = the server's CPU meanwhile; "
          f"others = the CPU other processes of the machine took meanwhile (0 on a quiet machine)")
    table(["crawler", "wall s", "rounds (wall s)", "user s", "sys s", "CPU s", "nginx CPU s", "others CPU s"],
          [[n, f"{med[n]['wall']:.3f}", med[n]["rounds"], f"{med[n]['user']:.2f}", f"{med[n]['sys']:.2f}",
            f"{med[n]['cpu']:.2f}", f"{med[n]['server']:.2f}", f"{med[n]['others']:.2f}"] for n in NAMES])
    cores = os.cpu_count() or 1
    busy = [(n, x[0], x[5], x[1]) for n in NAMES for x in sorted(runs[n]) if x[5] > 0.05 * x[1] * cores]
    for n, r, others, wall in busy:
        print(f"WARNING: other processes took {others:.2f} s of CPU during {n}'s round {r} "
              f"({100 * others / (wall * cores):.0f}% of the machine): that time is disturbed")
    print()
    rows = []
    for peer in ("gevent", "scrapy"):
        wall = med["ours"]["wall"] / med[peer]["wall"]
        cpu = med["ours"]["cpu"] / med[peer]["cpu"]
        target = TARGETS[peer]
        rows.append([f"ours / {peer}", f"{wall:.3f}", f"1/{med[peer]['wall'] / med['ours']['wall']:.1f}",
                     f"{cpu:.3f}", f"<= {target:.2f} (1/{round(1 / target)})", "met" if wall <= target else "not met"])
    table(["ratio", "wall", "wall as 1/x", "CPU", "target (wall)", ""], rows)
    if status == 1:
        print("FAILED: our crawler's page set differs from the reference's (see above)")
    elif status == 3:
        print("FAILED: a peer's page set differs from the reference's, so its time is not comparable")
    sys.exit(status)


if __name__ == "__main__":
    main()

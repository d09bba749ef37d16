"""The book's external links: one list, and a check that needs the network.

Every external link a page of the book makes is listed in ``book/external_links.txt`` (a test
compares the list with the built pages). ``alexnet-book check-links`` asks each address once and
reports the ones that do not answer; it needs the network, so CI never runs it.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["read_link_list", "check_link", "check_links"]

_USER_AGENT = "alexnet-book link check"


def read_link_list(path: str | Path) -> list[str]:
    """The addresses in a link list: one per line; blank lines and ``#`` comments are skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    links = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise ValueError(f"{path}: {link!r} is not an http(s) address; "
                             "list one full address per line")
    return links


def check_link(url: str, timeout: float = 15.0) -> str | None:
    """None when ``url`` answers with a success; otherwise what went wrong, in words."""
    for method in ("HEAD", "GET"):  # some servers refuse HEAD but serve GET
        request = urllib.request.Request(url, method=method, headers={"User-Agent": _USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return None
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code} {error.reason}"
            if error.code not in (403, 405, 501):
                return problem
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            return f"unreachable: {getattr(error, 'reason', error)}"
    return problem


def check_links(urls: list[str], timeout: float = 15.0) -> dict[str, str]:
    """The addresses that failed, each with its problem; empty when every one answered."""
    problems = {url: check_link(url, timeout) for url in urls}
    return {url: problem for url, problem in problems.items() if problem}

"""The list of external links and its checker, against a server on localhost."""

import socket

import pytest

from alexnet_book.cli import main
from alexnet_book.links import check_link, check_links, read_link_list


@pytest.fixture(scope="module")
def server(tmp_path_factory, serve_folder):
    folder = tmp_path_factory.mktemp("site")
    (folder / "page.html").write_text("<p>here</p>")
    return serve_folder(folder)


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens once the probe closes


def test_the_list_skips_comments_and_blank_lines(tmp_path):
    listing = tmp_path / "links.txt"
    listing.write_text("# a comment\n\nhttps://example.org/a\n  http://example.org/b  \n")
    assert read_link_list(listing) == ["https://example.org/a", "http://example.org/b"]


def test_the_list_refuses_what_is_not_an_address(tmp_path):
    listing = tmp_path / "links.txt"
    listing.write_text("https://example.org\nexample.org/no-scheme\n")
    with pytest.raises(ValueError, match="'example.org/no-scheme' is not an http"):
        read_link_list(listing)


def test_the_book_s_list_is_well_formed():
    assert read_link_list("book/external_links.txt")


def test_a_page_that_answers_passes_and_a_missing_one_fails(server):
    assert check_link(f"{server}/page.html") is None
    assert check_link(f"{server}/gone.html") == "HTTP 404 File not found"


def test_an_address_nobody_answers_is_unreachable():
    problem = check_link(f"http://127.0.0.1:{_closed_port()}/", timeout=5)
    assert problem.startswith("unreachable")


def test_check_links_reports_only_the_failures(server):
    urls = [f"{server}/page.html", f"{server}/gone.html"]
    assert check_links(urls) == {f"{server}/gone.html": "HTTP 404 File not found"}


def test_the_command_exits_non_zero_and_names_the_broken_link(server, tmp_path, capsys):
    listing = tmp_path / "links.txt"
    listing.write_text(f"{server}/page.html\n{server}/gone.html\n")
    assert main(["check-links", str(listing)]) == 1
    out, err = capsys.readouterr()
    assert f"{server}/gone.html: HTTP 404" in err
    assert "1 of 2 external links answered" in out

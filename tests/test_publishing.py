"""The published book: the workflow that deploys it, Binder's environment, and the repository's
URL, which `_config.yml` holds and every other file repeats."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from test_repository import _readme_commands  # the README's two commands, read one way

from alexnet_book.links import check_link

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10; pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
ENVIRONMENT = ROOT / "environment.yml"
POST_BUILD = ROOT / "postBuild"  # Binder runs it after installing environment.yml
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _readme_book_install_and_build():
    """The README's build command in its two parts: the install and the build."""
    install, build = _readme_commands()[0].split("&&")
    return install.strip(), build.strip()


# The workflow

def _workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def _jobs():
    return _workflow()["jobs"]


def _run_lines(job):
    return [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()]


def _steps_using(job, action):
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def _runs_on_pull_requests(job):
    return "if" not in job or "== 'pull_request'" in job["if"]


def test_workflow_deploys_from_the_configured_branch_and_tests_pull_requests():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == [CONFIG["repository"]["branch"]]
    assert "pull_request" in triggers


def test_pull_requests_run_the_readmes_test_command():
    _, test = _readme_commands()
    test_jobs = [job for job in _jobs().values() if test in _run_lines(job)]
    assert test_jobs, f"a job must run the README's test command verbatim: {test}"
    assert all(_runs_on_pull_requests(job) for job in test_jobs)


def test_the_build_runs_the_readmes_command_with_warnings_as_errors_and_uploads_the_html():
    build = _jobs()["build"]
    assert not _runs_on_pull_requests(build)
    install, build_command = _readme_book_install_and_build()
    assert install in _run_lines(build)
    assert f"{build_command} -W" in _run_lines(build), "a warning must stop the deploy"
    [upload] = _steps_using(build, "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "_build/html"


def test_the_site_gets_the_students_assignments_but_not_the_autograders():
    [command] = [line for line in _run_lines(_jobs()["build"])
                 if line.startswith("alexnet-book assignments")]
    words = shlex.split(command)
    out_dir = Path(words[2])
    assert Path("_build/html") not in (out_dir, *out_dir.parents), \
        "the assignments folder holds the hidden tests: make it outside the published site"
    assert words[words.index("--publish") + 1] == "_build/html/assignments"


def test_the_deploy_job_publishes_the_build_with_the_pages_permissions():
    workflow, deploy = _workflow(), _jobs()["deploy"]
    assert deploy["needs"] == "build"
    permissions = {**workflow.get("permissions", {}), **deploy.get("permissions", {})}
    assert permissions.get("pages") == "write" and permissions.get("id-token") == "write"
    [step] = _steps_using(deploy, "actions/deploy-pages")
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["environment"]["url"] == f"${{{{ steps.{step['id']}.outputs.page_url }}}}"
    assert deploy["concurrency"]["group"] == "pages"


def test_every_job_that_installs_caches_pip_on_a_supported_python():
    for name, job in _jobs().items():
        if not any("pip install" in line for line in _run_lines(job)):
            continue
        [setup] = _steps_using(job, "actions/setup-python")
        assert setup["with"].get("cache") == "pip", name
        assert setup["with"].get("cache-dependency-path") == "pyproject.toml", name
        assert SpecifierSet(PROJECT["requires-python"]).contains(setup["with"]["python-version"])


def test_the_trained_networks_are_cached_by_the_packages_source():
    for name in ("test", "build"):
        caches = [step["with"] for step in _steps_using(_jobs()[name], "actions/cache")]
        [networks] = [cache for cache in caches if cache["path"].endswith("alexnet_book")]
        assert "hashFiles('alexnet_book/**'" in networks["key"], name
        # A key that matched only in part would restore a network an older package trained.
        assert "restore-keys" not in networks, name


# Binder's environment

def _environment_pip_lines():
    dependencies = yaml.safe_load(ENVIRONMENT.read_text())["dependencies"]
    [pip] = [entry["pip"] for entry in dependencies if isinstance(entry, dict)]
    return pip


def _is_option(line):  # --extra-index-url and the like; `-e PATH` is a requirement
    return line.startswith("-") and not line.startswith(("-e ", "--editable"))


def _installs_this_package(args):
    """Whether pip arguments name the repository's own folder: `.`, `-e .[book]`, ..."""
    return any(re.fullmatch(r"\.(\[[\w,-]+\])?", arg) for arg in args)


def _environment_requirements():
    return [line for line in _environment_pip_lines()
            if not _is_option(line) and not _installs_this_package(shlex.split(line))]


def _book_requirements():
    """What the README's `pip install -e ".[book]"` asks for: the dependencies and the book
    extra, with the package's references to its own extras followed."""
    requirements, extras, seen = list(PROJECT["dependencies"]), ["book"], set()
    while extras:
        extra = extras.pop()
        seen.add(extra)
        for line in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == canonicalize_name(PROJECT["name"]):
                extras += sorted(requirement.extras - seen)
            else:
                requirements.append(line)
    return requirements


def _normalised(lines):
    requirements = set()
    for line in lines:
        requirement = Requirement(line)
        requirement.name = canonicalize_name(requirement.name)
        requirements.add(str(requirement))
    return requirements


def _environment_python():
    dependencies = yaml.safe_load(ENVIRONMENT.read_text())["dependencies"]
    [version] = [match.group(1) for entry in dependencies if isinstance(entry, str)
                 and (match := re.fullmatch(r"python\s*=+\s*([\d.]+)\*?", entry))]
    return version


def test_binder_installs_what_the_readmes_book_command_installs():
    assert _normalised(_environment_requirements()) == _normalised(_book_requirements()), \
        "environment.yml's pip list must be pyproject's dependencies plus the book extra"


def test_binder_installs_the_package_itself():
    in_environment = any(_installs_this_package(shlex.split(line))
                         for line in _environment_pip_lines())
    in_post_build = POST_BUILD.exists() and any(
        _installs_this_package(shlex.split(line))
        for line in POST_BUILD.read_text().splitlines() if re.search(r"\bpip install\b", line))
    assert in_environment or in_post_build, "environment.yml or postBuild must install `.`"
    if POST_BUILD.exists():
        assert POST_BUILD.read_text().startswith("#!"), "repo2docker executes postBuild"
        assert POST_BUILD.stat().st_mode & 0o111, "postBuild must be executable: chmod +x"


def test_binders_python_is_one_the_package_supports():
    assert SpecifierSet(PROJECT["requires-python"]).contains(_environment_python())


def _resolve(report, *pip_args):
    """The {name: version} pip would install into an empty environment, downloading nothing
    but metadata. Versions drop their local label (2.5.1+cpu is torch 2.5.1)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), *pip_args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    installed = [item["metadata"] for item in json.loads(report.read_text())["install"]]
    return {canonicalize_name(meta["name"]): Version(meta["version"]).public for meta in installed}


@pytest.mark.install
def test_binder_resolves_the_versions_the_readmes_book_command_installs(tmp_path):
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python != _environment_python():
        pytest.skip(f"environment.yml asks for Python {_environment_python()}, this is {python}")
    options = [line for line in _environment_pip_lines() if _is_option(line)]
    # Where PyPI is reachable but PyTorch's CPU index is not (as on the machines that wrote
    # this test), compare without it: the CPU wheels carry the same versions as PyPI's, with a
    # `+cpu` label that _resolve drops.
    cpu_index = "https://download.pytorch.org/whl/cpu"
    if check_link(f"{cpu_index}/torch/", timeout=10) is not None:  # it did not answer
        options = [line for line in options if cpu_index not in line]
    requirements = tmp_path / "environment-requirements.txt"
    requirements.write_text("\n".join([*options, *_environment_requirements()]) + "\n")

    install, _ = _readme_book_install_and_build()
    readme_args = shlex.split(install)[2:]  # after `pip install`: -e .[book]
    readme = _resolve(tmp_path / "readme.json", *readme_args)
    readme.pop(canonicalize_name(PROJECT["name"]))  # postBuild installs it, without dependencies
    binder = _resolve(tmp_path / "binder.json", "-r", str(requirements))
    assert binder == readme


# One repository URL

# A repository named in any form this project writes: a link or a pip requirement
# (git+https://github.com/OWNER/REPO), Colab's github/OWNER/REPO/blob/BRANCH/PATH or Binder's
# v2/gh/OWNER/REPO/BRANCH.
REPOSITORY_IN_URL = re.compile(
    r"(?:github\.com|raw\.githubusercontent\.com|colab\.research\.google\.com/github"
    r"|mybinder\.org/v2/gh)/([\w.-]+)/([\w.-]+)")
LAUNCH_LINK = re.compile(
    r"https://(?:colab\.research\.google\.com/github|mybinder\.org/v2/gh)/[^\s)\"'<>]+")


def _owner_and_repository(owner, repository):
    return f"{owner}/{repository.rstrip('.').removesuffix('.git')}"


def _texts_naming_the_repository():
    yield "README.md", (ROOT / "README.md").read_text()
    for name, url in PROJECT["urls"].items():
        yield f"pyproject.toml [project.urls] {name}", url
    for path in sorted(BOOK.rglob("*.ipynb")):
        if ".ipynb_checkpoints" not in path.parts:
            cells = json.loads(path.read_text())["cells"]
            yield str(path.relative_to(ROOT)), "\n".join("".join(c["source"]) for c in cells)
    for path in sorted(BOOK.rglob("*.md")):
        yield str(path.relative_to(ROOT)), path.read_text()


def _launch_links():
    return [(where, url) for where, text in _texts_naming_the_repository()
            for url in LAUNCH_LINK.findall(text)]


def _launched_notebook(url):
    """The notebook a Colab (…/blob/BRANCH/PATH) or Binder (…?labpath=PATH) link opens."""
    parts = urlsplit(url)
    if parts.netloc == "mybinder.org":
        return parse_qs(parts.query)["labpath"][0]
    return "/".join(parts.path.split("/")[6:])


def test_every_url_names_the_configured_repository():
    configured = _owner_and_repository(*REPOSITORY_IN_URL.search(CONFIG["repository"]["url"])
                                       .groups())
    found = [(where, match) for where, text in _texts_naming_the_repository()
             for match in REPOSITORY_IN_URL.finditer(text)]
    assert found
    elsewhere = [f"{where}: {match.group(0)}" for where, match in found
                 if _owner_and_repository(*match.groups()) != configured]
    assert not elsewhere, f"_config.yml's repository.url names {configured}; these differ"


def test_the_readme_opens_with_colab_and_binder_badges():
    below_title = (ROOT / "README.md").read_text().split("\n", 1)[1]
    badges = below_title.strip().split("\n\n")[0]  # the paragraph right under the title
    assert "https://colab.research.google.com/assets/colab-badge.svg" in badges
    assert "https://mybinder.org/badge_logo.svg" in badges
    hosts = {urlsplit(url).netloc for where, url in _launch_links() if where == "README.md"}
    assert hosts == {"colab.research.google.com", "mybinder.org"}


def test_launch_links_open_an_existing_notebook_on_the_configured_branch():
    links = _launch_links()
    assert links
    for where, url in links:
        # /github/OWNER/REPO/blob/BRANCH/PATH (Colab) or /v2/gh/OWNER/REPO/BRANCH (Binder)
        branch = urlsplit(url).path.split("/")[5]
        assert branch == CONFIG["repository"]["branch"], f"{where}: {url}"
        notebook = _launched_notebook(url)
        assert notebook.endswith(".ipynb") and (ROOT / notebook).is_file(), f"{where}: {url}"

"""The image: the Dockerfile's shape, and its install step replayed on exactly the files
.dockerignore lets into the build context (no Docker engine here to build the image itself)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("identity", "dossier", "queue", "notify", "rating")


def dockerfile_stages() -> list[dict]:
    """[{base, name, instructions: [(KEYWORD, argument)]}] with continuation lines joined."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = argument.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base, _, name = argument.partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.strip())
            stages.append({"base": base, "name": name.strip(), "instructions": []})
        else:
            stages[-1]["instructions"].append((keyword, argument.strip()))
    return stages


def test_multi_stage_on_a_pinned_slim_base():
    stages = dockerfile_stages()
    assert [s["name"] for s in stages] == ["build", "runtime"]
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", stage["base"]), stage["base"]


def test_the_runtime_stage_runs_motcua_as_an_unprivileged_user_without_build_tools():
    runtime = dockerfile_stages()[-1]["instructions"]
    keywords = dict(runtime)
    user = [arg for kw, arg in runtime if kw == "USER"][-1]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), "a numeric non-root uid:gid, so runAsNonRoot can check it"
    assert keywords["ENTRYPOINT"] == '["motcua"]'
    runs = " ".join(arg for kw, arg in runtime if kw == "RUN")
    assert not re.search(r"pip |gcc|g\+\+|make|build-essential|-dev\b", runs)
    installed = {package for group in re.findall(r"apt-get install -y --no-install-recommends ([\w .-]+?)&&", runs)
                 for package in group.split()}
    assert installed <= {"fonts-dejavu-core"}, installed  # run-time files only
    copies = [arg for kw, arg in runtime if kw == "COPY"]
    assert copies == ["--from=build /opt/motcua /opt/motcua"]
    assert "PYTHONDONTWRITEBYTECODE=1" in keywords["ENV"]  # the root filesystem is read-only at run time
    assert "MOTCUA_DATA_DIR=/var/lib/motcua" in keywords["ENV"]


def test_the_runtime_stage_has_the_fonts_the_result_pdfs_embed():
    pdf = (REPO / "services" / "dossier" / "result_pdf.py")
    if not pdf.exists() or "dejavu" not in pdf.read_text(encoding="utf-8").lower():
        pytest.skip("no service embeds DejaVu fonts")
    runs = " ".join(arg for kw, arg in dockerfile_stages()[-1]["instructions"] if kw == "RUN")
    assert "fonts-dejavu-core" in runs


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """(.dockerignore) -> [(is_exception, regex)], in file order; the last match wins."""
    patterns = []
    for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(regex + r"\Z")))
    return patterns


def in_build_context(path: PurePosixPath, patterns) -> bool:
    """Docker's rule: a pattern matching the path or any of its parents decides; last one wins."""
    candidates = [str(path)] + [str(parent) for parent in path.parents if str(parent) != "."]
    included = True
    for negate, regex in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            included = negate
    return included


@pytest.fixture(scope="module")
def build_context(tmp_path_factory) -> Path:
    """A copy of the files `docker build .` would send."""
    patterns = dockerignore_patterns()
    context = tmp_path_factory.mktemp("context")
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if (REPO / name).is_file() and in_build_context(PurePosixPath(name), patterns):
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, context / name)
    return context


def test_the_build_stage_installs_the_locked_dependencies_then_the_wheel():
    build = dockerfile_stages()[0]["instructions"]
    runs = " ".join(arg for kw, arg in build if kw == "RUN")
    assert "pip install --require-hashes -r requirements/runtime.txt" in runs
    assert re.search(r"pip wheel --no-deps -w (\S+) \.\s+&&\s+\S+pip install --no-deps \1/motcua-\*\.whl", runs), runs
    assert not re.search(r"pip install (-e )?\.(\s|$)", runs), "pip resolving on its own picks unpinned versions"


def test_the_build_context_holds_the_sources_and_nothing_else(build_context):
    files = {str(p.relative_to(build_context)) for p in build_context.rglob("*") if p.is_file()}
    assert {"pyproject.toml", "README.md", "requirements/runtime.txt", "libs/motcua_platform/cli.py"} <= files
    for service in SERVICES:
        assert f"services/{service}/api.py" in files
    assert not [f for f in files if "/tests/" in f or f.startswith(("deploy/", "tests/", ".git", ".venv", "docs/"))]
    assert "Dockerfile" not in files and "docker-compose.yml" not in files


def test_pip_installs_the_platform_from_that_context(build_context, tmp_path):
    """The build stage's `pip install .`, as a wheel: every package, its data files and the command."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(build_context)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("motcua-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "motcua_platform/cli.py" in names and "motcua_common/events_pb2.py" in names
    assert "motcua_dossier/templates/portal/catalog.html" in names
    for service in SERVICES:
        assert {f"motcua_{service}/api.py", f"motcua_{service}/worker.py", f"motcua_{service}/bootstrap.py",
                f"motcua_{service}/openapi.yaml"} <= names, service
    assert not [n for n in names if "/tests/" in n]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "motcua = motcua_platform.cli:main" in entry_points

"""What is installed is what is tested (issue 15): the wheel carries every file of the
tree, nothing test-only, and the locks pin what pyproject's ranges allow."""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.11 has it
    tomllib = None

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]   # motcua_x -> libs/... or services/...


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from this tree exactly as the image and CI build it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, cwd=out, timeout=300)
    (built,) = out.glob("motcua-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _shipped_sources() -> dict[str, Path]:
    """Every file that belongs in the wheel: all of each package's folder at any depth,
    less its tests and byte code. Keyed by the path it has inside the wheel."""
    wanted = {}
    for package, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in base.rglob("*"):
            relative = path.relative_to(base)
            if not path.is_file() or relative.parts[0] in ("tests", "instance") or "__pycache__" in relative.parts:
                continue
            wanted[f"{package}/{relative.as_posix()}"] = path
    return wanted


def test_the_wheel_carries_every_file_of_the_tree(wheel):
    names = set(wheel.namelist())
    wanted = _shipped_sources()
    non_python = sorted(name for name in wanted if not name.endswith(".py"))
    assert any(name.startswith("motcua_dossier/templates/portal/") for name in non_python)
    missing = sorted(name for name in wanted if name not in names)
    assert not missing, f"the wheel leaves out files the platform reads at run time: {missing}"


def test_the_wheel_carries_nothing_test_only(wheel):
    names = wheel.namelist()
    test_files = [n for n in names if "/tests/" in n or n.startswith(("tests/", "motcua_testing/", "bench/"))]
    assert not test_files, f"test code in the runtime package: {test_files[:10]}"
    for name in names:
        if name.endswith(".py"):
            source = wheel.read(name).decode("utf-8")
            assert not re.search(r"^\s*(import|from) (pytest|hypothesis|playwright)\b", source, re.M), (
                f"{name} imports a test-only package")


def _lock(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line)
        if match:
            pins[canonicalize_name(match.group(1).split("[")[0])] = match.group(2)
    return pins


@pytest.mark.parametrize("lock", ["runtime.txt", "test.txt", "bench.txt"])
def test_every_pin_carries_hashes(lock):
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if re.match(r"^[A-Za-z0-9_.\-\[\]]+==", b)]
    assert pinned
    unhashed = [b.split()[0] for b in pinned if "--hash=sha256:" not in b]
    assert not unhashed, f"{lock}: pins without hashes (pip's --require-hashes refuses them): {unhashed}"


def test_the_locks_pin_what_pyproject_allows_and_agree():
    runtime, test = _lock("runtime.txt"), _lock("test.txt")
    declared = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    declared += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in test, f"{name} is declared but not locked: run bash requirements/refresh"
        assert requirement.specifier.contains(test[name], prereleases=True), (
            f"the lock pins {name}=={test[name]}, outside pyproject's {requirement.specifier}")
    disagree = {n: (v, test.get(n)) for n, v in runtime.items() if test.get(n) != v}
    assert not disagree, f"the image would run other versions than the suite tested: {disagree}"


def test_the_telemetry_family_is_pinned_together():
    """opentelemetry-* is released in matched versions (1.x with 0.(x+21)b0): one pin set,
    or pip backtracks for ever on a fresh machine."""
    pins = _lock("runtime.txt")
    stable = {n: v for n, v in pins.items() if n.startswith("opentelemetry-") and not v.startswith("0.")}
    contrib = {n: v for n, v in pins.items() if n.startswith("opentelemetry-") and v.startswith("0.")}
    assert len(set(stable.values())) == 1, stable
    assert len(set(contrib.values())) == 1, contrib
    minor = int(next(iter(stable.values())).split(".")[1])
    assert next(iter(contrib.values())).startswith(f"0.{minor + 21}b"), (stable, contrib)


def _imported_top_names(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_direct_import_is_declared():
    """A package the code imports must be a declared dependency, not something another
    dependency happens to bring today."""
    stdlib = set(sys.stdlib_module_names)
    ours = set(PACKAGE_DIRS)
    provided = {  # import name -> distribution
        "flask": "flask", "werkzeug": "werkzeug", "markupsafe": "markupsafe", "itsdangerous": "itsdangerous",
        "gunicorn": "gunicorn", "nameko": "nameko", "kombu": "kombu", "amqp": "amqp", "eventlet": "eventlet", "pika": "pika",
        "aiormq": "aiormq", "pamqp": "pamqp", "pymongo": "pymongo", "bson": "pymongo", "gridfs": "pymongo",
        "google": "protobuf", "prometheus_client": "prometheus-client", "jwt": "pyjwt",
        "cryptography": "cryptography", "asn1crypto": "asn1crypto", "argon2": "argon2-cffi",
        "holidays": "holidays", "pythonjsonlogger": "python-json-logger", "requests": "requests",
        "urllib3": "urllib3", "secantus": "secantusdb", "yaml": "pyyaml", "pyhanko": "pyhanko",
        "pyhanko_certvalidator": "pyhanko", "reportlab": "reportlab", "smpplib": "smpplib", "qrcode": "qrcode",
        "filetype": "filetype", "opentelemetry": "opentelemetry-sdk", "vietnam_provinces": "vietnam-provinces",
        "openpyxl": "openpyxl",
    }
    declared = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    undeclared = set()
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "tests" in path.relative_to(ROOT / folder).parts:
                continue
            for top in _imported_top_names(path):
                if top in stdlib or top in ours or top == "__future__":
                    continue
                distribution = provided.get(top)
                if distribution is None or canonicalize_name(distribution) not in declared:
                    undeclared.add(f"{top} ({path.relative_to(ROOT)})")
    assert not undeclared, f"imported but not declared in pyproject's dependencies: {sorted(undeclared)}"


def test_motcua_version_and_help():
    done = subprocess.run([sys.executable, "-m", "motcua_platform.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and re.fullmatch(r"motcua \d+\.\d+\.\d+\S*\n", done.stdout), done
    helped = subprocess.run([sys.executable, "-m", "motcua_platform.cli", "up", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and re.search(r"\(default:\s+8080\)", helped.stdout), helped.stdout


@pytest.mark.parametrize("argv, env, names", [
    (["prepare", "--service", "rating"], {"MONGO_URL": "mongodb://127.0.0.1:9/?directConnection=true"}, "MONGO_URL"),
    (["topology"], {"AMQP_URL": "amqp://guest:guest@127.0.0.1:9/%2F"}, "rabbitmq-server -detached"),
    (["up", "--port", "9"], {"MONGO_URL": "mongodb://127.0.0.1:9/?directConnection=true"}, "MONGO_URL"),
])
def test_an_unreachable_backing_service_is_one_clear_line(argv, env, names, tmp_path):
    import os

    done = subprocess.run([sys.executable, "-m", "motcua_platform.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "MOTCUA_DATA_DIR": str(tmp_path), **env}, timeout=120)
    assert done.returncode == 69, done
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and names in errors[0] and "127.0.0.1:9" in errors[0], done.stderr

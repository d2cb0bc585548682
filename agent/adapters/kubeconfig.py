"""Kubeconfig files as kubectl reads them: the list KUBECONFIG names, a one-line error for a
file that is missing or is not a kubeconfig, and the cluster name of the context in use.

I/O: reads the files. Errors name the file and what is wrong, never a value from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from agent.errors import KubeError

DEFAULT_KUBECONFIG = "~/.kube/config"
_WHAT_TO_DO = "give a kubeconfig with --kubeconfig or KUBECONFIG"


@dataclass(frozen=True, slots=True)
class Kubeconfigs:
    """The kubeconfig files that exist, in KUBECONFIG order, and what each holds."""

    paths: tuple[Path, ...]
    documents: tuple[dict[str, Any], ...]

    @property
    def config_file(self) -> str:
        """The files for the client library, which logs a warning for each missing one."""
        return os.pathsep.join(str(path) for path in self.paths)

    def context_names(self) -> list[str]:
        return list(self._contexts())

    def current_context(self, chosen: str | None) -> str | None:
        if chosen:
            return chosen
        # As kubectl merges files: the first file that sets a value wins.
        return next(
            (str(d["current-context"]) for d in self.documents if d.get("current-context")), None
        )

    def cluster_name(self, chosen: str | None) -> str | None:
        """The name of the cluster the context in use points at, as in `kubectl config view`."""
        context = self._contexts().get(self.current_context(chosen) or "")
        cluster = context.get("cluster") if isinstance(context, dict) else None
        return str(cluster) if cluster else None

    def check_context(self, chosen: str | None) -> None:
        """kubectl's answer when the context to use is not there, before the library's."""
        names = self.context_names()
        known = f" (it has: {', '.join(names)})" if names else " (it has none)"
        where = self.config_file
        name = self.current_context(chosen)
        if name is None:
            raise KubeError(
                f"kubeconfig {where} has no current-context; give --context NAME{known}",
                retryable=False,
            )
        if name not in names:
            flag = "--context" if chosen else "its current-context"
            raise KubeError(
                f'kubeconfig {where}: context "{name}" ({flag}) does not exist{known}',
                retryable=False,
            )

    def _contexts(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for document in self.documents:
            for entry in document.get("contexts") or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    found.setdefault(str(entry["name"]), entry.get("context"))
        return found


def kubeconfig_entries(paths: str) -> list[Path]:
    """The files a KUBECONFIG-style list names (default ~/.kube/config), `~` expanded."""
    return [
        Path(entry).expanduser()
        for entry in (paths or DEFAULT_KUBECONFIG).split(os.pathsep)
        if entry
    ]


def read_kubeconfigs(paths: str) -> Kubeconfigs:
    """Read every kubeconfig `paths` names. Missing files in a list are skipped, as kubectl
    skips them; a list where none exists, or a file that is not a kubeconfig, is an error."""
    entries = kubeconfig_entries(paths)
    found: list[tuple[Path, dict[str, Any]]] = []
    missing: list[Path] = []
    for path in entries:
        document = _read(path)
        if document is None:
            missing.append(path)
        else:
            found.append((path, document))
    if not found:
        stat = "; ".join(f"stat {path}: no such file or directory" for path in missing)
        raise KubeError(f"{stat}; {_WHAT_TO_DO}", retryable=False) from FileNotFoundError(stat)
    return Kubeconfigs(tuple(p for p, _ in found), tuple(d for _, d in found))


def _read(path: Path) -> dict[str, Any] | None:
    """One kubeconfig as a mapping; None when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise _not_usable(path, "is a directory, not a file", exc) from exc
    except UnicodeDecodeError as exc:
        raise _not_usable(path, "is not a text file (not UTF-8)", exc) from exc
    except OSError as exc:
        raise _not_usable(
            path, f"cannot be read: {(exc.strerror or str(exc)).lower()}", exc
        ) from exc
    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = True  # the client library's parser accepts them too
    try:
        document = yaml.load(text)
    except YAMLError as exc:
        raise _not_usable(path, f"is not valid YAML: {_yaml_problem(exc)}", exc) from exc
    if document is None:
        document = {}  # an empty file is an empty kubeconfig, as kubectl reads it
    if not isinstance(document, dict):
        kind = type(document).__name__
        problem = (
            f"is not a kubeconfig: a YAML mapping (clusters, contexts, users) is expected, "
            f"not a {kind}"
        )
        raise _not_usable(path, problem, ValueError(problem))
    return document


def _yaml_problem(exc: YAMLError) -> str:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())


def _not_usable(path: Path, problem: str, cause: BaseException) -> KubeError:
    error = KubeError(f"kubeconfig {path} {problem}; {_WHAT_TO_DO}", retryable=False)
    error.__cause__ = cause
    return error

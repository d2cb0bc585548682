"""The `cvsync` command group and the one error path of the whole command line: an expected
failure is one line `cvsync: error: ...` and exit 2; only a bug shows a traceback.
"""

from __future__ import annotations

import importlib
import platform
import sys
import traceback
from collections.abc import Iterator, MutableMapping, Sequence
from typing import NoReturn

import click

from agent import __version__
from agent.cli.options import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE
from agent.errors import CvsyncError

# Where each command lives, as module:attribute. A command's module is imported only when the
# command is looked up, so `cvsync validate` never loads run's Kubernetes client or diff's
# engine, and `cvsync validate --help` starts in a fraction of the time the whole set takes.
COMMANDS = {
    "validate": "agent.cli.validate:validate",
    "sandbox": "agent.cli.sandbox:sandbox",
    "run": "agent.cli.run:run",
    "demo": "agent.cli.demo:demo",
    "diff": "agent.cli.diff_plan:diff",
    "plan": "agent.cli.diff_plan:plan",
    "status": "agent.cli.status:status",
    "drift": "agent.cli.status:drift",
}


class CommandsOnDemand(MutableMapping[str, click.Command]):
    """The group's commands by name, each imported the first time it is looked up; listing
    the names (completion, a mistyped command) imports none. `cvsync --help` imports all, for
    their one-line help."""

    def __init__(self, where: dict[str, str]) -> None:
        self._entries: dict[str, str | click.Command] = dict(where)

    def __getitem__(self, name: str) -> click.Command:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module), attribute)
            assert isinstance(entry, click.Command), f"{module}.{attribute} is not a command"
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@click.group(
    commands=CommandsOnDemand(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="cvsync")
def cvsync() -> None:
    """GitOps for OpenShift's ClusterVersion: keep a cluster's ClusterVersion in line with
    git, gate its upgrades, and report what the cluster does.

    Shell completion: eval "$(_CVSYNC_COMPLETE=bash_source cvsync)" (zsh_source, fish_source
    for zsh and fish)."""


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line. Every failure ends here: cvsync's own errors and click's usage
    errors become one line and exit 2, Ctrl-C exits 130, anything else is a bug."""
    try:
        code = cvsync.main(
            args=list(argv) if argv is not None else None,
            prog_name="cvsync",
            standalone_mode=False,
        )
    except (click.Abort, KeyboardInterrupt):
        sys.exit(EXIT_INTERRUPTED)  # click turns Ctrl-C into Abort, after a newline
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "cvsync"
        fail(f"{_sentence(exc.format_message())} (see '{where} --help')")
    except click.ClickException as exc:
        fail(_sentence(exc.format_message()))
    except CvsyncError as exc:
        fail(exc.message)
    except Exception:  # the one place a bug is reported, with its traceback
        traceback.print_exc()
        click.echo(
            f"cvsync: internal error: this is a bug in cvsync {__version__} (Python "
            f"{platform.python_version()}); please report it with the traceback above",
            err=True,
        )
        sys.exit(EXIT_BUG)
    sys.exit(code if isinstance(code, int) else 0)


def fail(message: str) -> NoReturn:
    """The line every expected failure ends with: one line on stderr, exit 2."""
    one_line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"cvsync: error: {one_line}", err=True)
    sys.exit(EXIT_USAGE)


def _sentence(text: str) -> str:
    """Click's messages as a clause of our line: "Missing option" -> "missing option"."""
    text = text.strip().removesuffix(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text

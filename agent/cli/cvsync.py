"""The `cvsync` command group and the one error path of the whole command line: an expected
failure is one line `cvsync: error: ...` and exit 2; only a bug shows a traceback.
"""

from __future__ import annotations

import platform
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click

from agent import __version__
from agent.cli import demo, diff_plan, run, sandbox, status, validate
from agent.cli.options import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE
from agent.errors import CvsyncError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cvsync")
def cvsync() -> None:
    """GitOps for OpenShift's ClusterVersion: keep a cluster's ClusterVersion in line with
    git, gate its upgrades, and report what the cluster does.

    Shell completion: eval "$(_CVSYNC_COMPLETE=bash_source cvsync)" (zsh_source, fish_source
    for zsh and fish)."""


for _command in (
    validate.validate,
    sandbox.sandbox,
    run.run,
    demo.demo,
    diff_plan.diff,
    diff_plan.plan,
    status.status,
    status.drift,
):
    cvsync.add_command(_command)


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

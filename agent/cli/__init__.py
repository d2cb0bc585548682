"""The `cvsync` command line: one module per command group, shared options and output, and
the one error path that turns expected failures into a line and an exit code.
"""


def main() -> None:
    """The `cvsync` console script (`python -m agent` too)."""
    from agent.cli.cvsync import main as run_command_line  # noqa: PLC0415

    run_command_line()

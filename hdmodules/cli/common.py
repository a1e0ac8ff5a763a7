"""What both commands share: turning every failure into one plain line and an exit code."""

from __future__ import annotations

import click

from ..errors import HitError


def run_cli(cli: click.Group, prog: str) -> int:
    """Run a click group; user errors become `prog: error: ...` and exit 1, never a traceback."""
    try:
        rv = cli.main(prog_name=prog, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted; builds under way were stopped", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except HitError as e:
        click.echo(f"{prog}: error: {e}", err=True)
        return 1
    except BrokenPipeError:
        return 141
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        click.echo(f"{prog}: error: {e.strerror or e}{where}", err=True)
        return 1

"""`python -m forgeline.cli`: the same command as the installed `forgeline` script."""

import sys

from forgeline.cli.main import main

sys.exit(main(prog_name="forgeline"))

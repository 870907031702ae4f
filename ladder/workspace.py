"""``python -m ladder.workspace``: the W&B workspace of one sweep group, as code (the command's
home is :mod:`ladder.track.workspace`)."""
import sys

from ladder.track.workspace import main

if __name__ == "__main__":
    sys.exit(main())

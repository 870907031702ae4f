"""``python -m ladder.inspect``: every rung's params and GFLOPs beside the paper's
(the command's home is :mod:`ladder.ladders.inspect`)."""
import sys

from ladder.ladders.inspect import main

if __name__ == "__main__":
    sys.exit(main())

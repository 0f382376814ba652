"""`python -m scaled_ql.cli ...` is `scaled-ql ...`."""

import sys

from scaled_ql.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m backdrop_client`: the `backdrop` client commands."""

import sys

from backdrop_client.cli import main

sys.exit(main())

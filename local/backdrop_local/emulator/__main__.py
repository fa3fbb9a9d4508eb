"""`python -m backdrop_local.emulator`: run the provider emulator in the foreground."""

from backdrop_local.emulator.cli import main

raise SystemExit(main())

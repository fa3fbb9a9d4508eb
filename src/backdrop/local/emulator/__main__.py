"""`python -m backdrop.local.emulator`: run the provider emulator in the foreground."""

from backdrop.local.emulator.cli import main

raise SystemExit(main())

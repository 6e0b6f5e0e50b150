"""`python -m nsdi_tracker` runs the command-line interface."""

from nsdi_tracker.cli import main

raise SystemExit(main())

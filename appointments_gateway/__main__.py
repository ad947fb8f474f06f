"""``python -m appointments_gateway`` runs the same command as ``appointments-gateway``."""

from appointments_gateway.cli import main

raise SystemExit(main())

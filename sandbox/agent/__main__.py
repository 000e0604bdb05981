"""``python -m dtagent`` inside the sandbox image."""

from .main import main

raise SystemExit(main())

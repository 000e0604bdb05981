"""``python -m pkgsandbox_agent`` inside the sandbox image."""

from .main import main

raise SystemExit(main())

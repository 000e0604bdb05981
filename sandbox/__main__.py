"""``python -m sandbox`` is the ``pkgsandbox`` command."""

from sandbox.cli import main

raise SystemExit(main())

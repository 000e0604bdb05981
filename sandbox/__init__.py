"""pkgsandbox: vet third-party Python packages in a sealed, recorded sandbox."""

__version__ = "0.1.0"

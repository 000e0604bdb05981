"""The sandbox's OCI runtime: runc behind a wrapper that gives the container a
workstation's view of itself (see :mod:`sandbox.oci.wrapper`)."""

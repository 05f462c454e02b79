"""NumPyro backend of pyro-ardae (issue 3: not implemented yet; the package name is reserved)."""

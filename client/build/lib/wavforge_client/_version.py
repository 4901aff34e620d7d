"""The client's release, which the server's ``wavforge-client`` requirement names."""

__version__ = "0.1.0"

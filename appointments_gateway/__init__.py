"""A GraphQL gateway in front of Cliniko's appointments REST API."""

__version__ = "0.1.0"

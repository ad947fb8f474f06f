"""ASGI assembly: the app factory, the GraphQL view and the small HTTP endpoints."""

from appointments_gateway.gateway.app import create_app, create_app_from_environ

__all__ = ["create_app", "create_app_from_environ"]

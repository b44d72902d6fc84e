"""The HTTP side: the app factory, pages, the JSON API, the report and metrics endpoints."""

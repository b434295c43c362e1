"""The HTTP API: FastAPI routers over the same plain functions the CLI calls."""

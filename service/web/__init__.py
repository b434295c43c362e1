"""Server-rendered pages on the API's roles: the same scope checks and plain functions,
HTML instead of JSON. Every asset is served by the app itself."""

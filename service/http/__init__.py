"""What both adapters (the API routers and the web pages) share: dependencies, the one
error mapping, middleware, request logging, parameter parsing and the API docs page."""

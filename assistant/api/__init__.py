"""The HTTP layer: thin Litestar handlers over the services in `assistant.conversations` and `assistant.jobs`."""

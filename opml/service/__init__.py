"""What every service shares: settings, JSON logs with request ids, Prometheus metrics, health and
readiness, error mapping, the database and its migrations, HTTP clients for other services.

A service package (services/<name>/<package>) is a thin FastAPI app over this and the library.
"""

"""Switchyard's demo application: a small HTTP API over PostgreSQL for exercising releases.

Modules: config (settings from the environment), versions (the SQL of v1/v2/v3, pure), app
(request handling, independent of HTTP and of the database), db (the PostgreSQL store),
server (HTTP/1.1 keep-alive server and graceful drain), __main__ (``python3 -m demo_app``).
"""

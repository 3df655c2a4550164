"""The control plane's HTTP API (FastAPI): it owns the registry and the scheduler's actions for
users. Every request carries a user's token; roles viewer < member < admin; changes land in
an audit log. The CLI and the web console (``console/``) are its clients.

``create_app(settings)`` builds the app; ``python -m orchestrator.api`` (``orch server``)
serves it; ``orchestrator.api.local`` starts one beside a local cluster.
"""

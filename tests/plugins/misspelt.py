"""A plugin with a misspelt hook name: the portal must refuse it at start-up."""
from app.plugins import hookimpl


@hookimpl
def audit_evnt(event):
    pass

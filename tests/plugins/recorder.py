"""A plugin object that keeps every event it is given."""
from app.plugins import hookimpl


class Recorder:
    def __init__(self):
        self.events: list[dict] = []

    @hookimpl
    def audit_event(self, event):
        self.events.append(event)

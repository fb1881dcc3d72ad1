from opml.agents.wiring import serve_agent

from .main import create_app
from .settings import SubmitterSettings

settings = SubmitterSettings()
serve_agent(create_app, settings, "submitter")

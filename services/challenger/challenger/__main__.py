from opml.agents.wiring import serve_agent

from .main import create_app
from .settings import ChallengerSettings

settings = ChallengerSettings()
serve_agent(create_app, settings, "challenger")

from opml.service.run import serve

from .main import create_app
from .settings import ChallengerSettings

settings = ChallengerSettings()
serve(create_app(settings), settings)

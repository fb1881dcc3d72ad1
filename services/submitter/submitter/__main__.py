from opml.service.run import serve

from .main import create_app
from .settings import SubmitterSettings

settings = SubmitterSettings()
serve(create_app(settings), settings)

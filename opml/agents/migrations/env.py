from opml.agents.store import Base
from opml.service.migrations_env import run

run(Base.metadata)

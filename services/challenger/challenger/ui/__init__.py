"""The dispute explorer: web pages, served by the challenger under /ui, that show people what the JSON API
shows machines (requests, claims and games at a glance, and each game's dissection as a picture).

Server-rendered HTML (Jinja2 templates in templates/), a small stylesheet and a small script in static/,
nothing fetched from anywhere else and no build step. Without JavaScript every page reads in full, as of
the moment it was served; with it, the page re-fetches itself every few seconds and swaps in its live
parts, and the clocks count down between fetches.
"""

from .pages import install

__all__ = ["install"]

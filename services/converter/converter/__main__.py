"""`python -m converter`: serve the converter with the settings from CONVERTER_* variables."""

from .main import main

main()

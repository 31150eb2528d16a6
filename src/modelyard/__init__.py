"""modelyard: which model serves each agent request, and what happens when it is busy or broken."""

__version__ = "0.1.0"

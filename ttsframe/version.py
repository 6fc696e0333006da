"""The ttsframe version: a module of its own, so that code which records it need not import the package."""

__version__ = "0.1.0"

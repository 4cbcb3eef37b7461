"""Front Door: a single point of access for young people's mental health services."""

__version__ = "0.1.0"

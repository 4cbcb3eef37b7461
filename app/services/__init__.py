"""Use cases. Services flush; the request's session commits once, before the response."""

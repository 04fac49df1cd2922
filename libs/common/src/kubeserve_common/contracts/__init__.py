"""Internal HTTP contracts between services: each body declared once, the serving side's
response (or request) model and the calling side's parser."""

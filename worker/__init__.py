"""Celery worker: joins the engine (models/) and the results database (db/)."""

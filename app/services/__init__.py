"""Domain rules as plain functions over a SQLAlchemy session, shared by views, API and CLI."""

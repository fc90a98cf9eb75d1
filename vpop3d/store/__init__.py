"""The one repository layer (SQLAlchemy Core) and the message body store."""

"""The store: SQLAlchemy models, engine set-up and the job-queue queries. Speaks only SQL."""

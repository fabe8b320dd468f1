"""The job path: the worker drains the outbox into FluentCRM, n8n and Persona."""

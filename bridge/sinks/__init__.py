"""Outbound sinks: HTTP clients for the systems kyc-bridge writes to (FluentCRM, ...)."""

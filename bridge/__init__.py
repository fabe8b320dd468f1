"""kyc-bridge: Persona KYC webhooks in, one truthful KYC state, FluentCRM tags and n8n events out."""

__version__ = "0.1.0"

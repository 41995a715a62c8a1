"""The REST API (`/api/v1/email/`): thin views over the services, per API.md."""

"""The JSON API on Django REST framework: `/api/tasks/…`, described at `/api/schema/`
(OpenAPI 3) and `/api/docs/` (Swagger UI). docs/api.md says what it answers.

Self-contained: every view sets its own authentication, permissions, parsers, renderers,
throttles, exception handler and schema class (`views.ApiView`), so the host's
`REST_FRAMEWORK` settings change nothing here.
"""

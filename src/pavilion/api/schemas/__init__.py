"""What the API answers: one module of response models per module of ``api/routes``.

Routes translate the typed results of workflows and services into these models, so the
OpenAPI document (``docs/openapi.json``) is a contract clients can generate code from.
Errors are :class:`pavilion.api.problems.Problem` everywhere.
"""

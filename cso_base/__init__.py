"""The bottom layer both strata share: REST/WSGI, config schemas, HTTP client, wire vocabulary."""

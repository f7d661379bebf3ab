"""HTTP handlers: read the request, call a domain action or query, render the answer."""

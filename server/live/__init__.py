"""Live updates: each process's hub fans committed events out to its open streams.

Patients use Server-Sent Events, staff a WebSocket; both carry HTML fragments that htmx swaps
out of band, and both resume from the last event id they applied.
"""
